namespace Drakkar;

/// <summary>The sink kinds. <see cref="Custom"/> covers every plugin kind.</summary>
public enum SinkKind
{
    Kafka,
    Postgres,
    Mongo,
    Redis,
    Http,
    Filesystem,
    Custom,
}
