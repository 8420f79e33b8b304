using System.Net.Sockets;
using MongoDB.Bson;
using MongoDB.Driver;
using MongoDB.Driver.Core.Clusters;
using MongoDB.Driver.Core.Events;

namespace Drakkar.Sinks.Mongo;

/// <summary>
/// Inserts each payload's data as a BSON document into its collection of the configured database (SPEC S10),
/// through the official driver: replica sets, <c>mongodb+srv</c>, TLS and the driver's authentication mechanisms
/// all come from the <c>uri</c>. Documents are the generated BSON bytes handed over as <see cref="RawBsonDocument"/>,
/// so no reflection serializer ever sees the user's types. One unordered insert per collection per batch: a
/// document the server refuses (a duplicate key, a validation error) fails only its own payload
/// (<see cref="SinkBatch.Fail"/>), the others are written once, and nothing is re-sent. The server assigns
/// <c>_id</c>, so delivering a batch again would add its documents again: not idempotent.
/// </summary>
internal sealed class MongoSink : ISink
{
    /// <summary>MongoDB's limit on one document (maxBsonObjectSize).</summary>
    private const int MaxDocumentBytes = 16 * 1024 * 1024;

    /// <summary>Server error codes that mean "not now" rather than "not this".</summary>
    private static readonly int[] TransientCodes = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436];

    private static readonly InsertManyOptions Unordered = new() { IsOrdered = false };

    private readonly MongoClientSettings _settings;
    private readonly string _databaseName;
    private readonly string _destination;
    private MongoClient? _client;
    private IMongoDatabase? _database;
    private volatile bool _serverReachable;

    public MongoSink(SinkContext context)
    {
        Name = context.Name;
        var config = (MongoSinkConfig)context.Settings;
        if (string.IsNullOrWhiteSpace(config.Uri)) throw new SinkConfigurationException($"{context.ConfigPath}.uri is required.");
        if (string.IsNullOrWhiteSpace(config.Database)) throw new SinkConfigurationException($"{context.ConfigPath}.database is required.");
        context.MaskCredentialsOf(config.Uri);
        try
        {
            _settings = MongoClientSettings.FromConnectionString(config.Uri);
        }
        catch (Exception e) when (e is MongoConfigurationException or ArgumentException or FormatException or NotSupportedException)
        {
            throw new SinkConfigurationException($"{context.ConfigPath}.uri is not a usable MongoDB connection string: {e.Message}");
        }
        _settings.ApplicationName ??= "drakkar";
        // Readiness follows what the driver's monitor sees, without a round trip per /readyz call.
        _settings.ClusterConfigurator = cluster => cluster.Subscribe<ClusterDescriptionChangedEvent>(
            e => _serverReachable = e.NewDescription.State == ClusterState.Connected);
        _databaseName = config.Database;
        _destination = $"MongoDB at {string.Join(",", _settings.Servers)}";
    }

    public string Kind => SinkKinds.ConfigName(SinkKind.Mongo);
    public string Name { get; }
    public bool IsIdempotent => false;
    public bool IsConnected => _database is not null && _serverReachable;

    public async ValueTask ConnectAsync(CancellationToken cancellationToken)
    {
        _client ??= new MongoClient(_settings);
        var database = _client.GetDatabase(_databaseName);
        try
        {
            // Selects a writable server and authenticates, so a wrong address or password stops the worker at start.
            await database.RunCommandAsync<BsonDocument>(new BsonDocument("ping", 1), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw Translate(e, $"cannot use {_destination} (database {_databaseName})");
        }
        _serverReachable = true;
        _database = database;
    }

    public async ValueTask DeliverAsync(SinkBatch batch, CancellationToken cancellationToken)
    {
        var database = _database ?? throw new SinkTransientException($"{_destination} is not connected");
        foreach (var (collection, documents, indexes) in Encode(batch))
        {
            try
            {
                await database.GetCollection<RawBsonDocument>(collection)
                    .InsertManyAsync(documents, Unordered, cancellationToken).ConfigureAwait(false);
            }
            catch (MongoBulkWriteException<RawBsonDocument> e)
            {
                ReportPartialFailure(batch, e, collection, documents, indexes);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The insert as a whole failed (server unreachable, authentication, a refused command): nothing of this
                // collection is known to be written, and each payload's group decides what happens next on its own.
                var error = Translate(e, $"insert of {documents.Count} document(s) into {collection} at {_destination} failed");
                foreach (var index in indexes) batch.Fail(index, error);
            }
        }
    }

    public ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        _database = null;
        Interlocked.Exchange(ref _client, null)?.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The batch's documents per collection, each with its payload's index; payloads that cannot be documents fail here.</summary>
    private static List<(string Collection, List<RawBsonDocument> Documents, List<int> Indexes)> Encode(SinkBatch batch)
    {
        var collections = new List<(string, List<RawBsonDocument>, List<int>)>();
        var writer = new BsonWriter(1024);
        for (var index = 0; index < batch.Count; index++)
        {
            var payload = (MongoPayload)batch.Payloads[index];
            if (payload.CollectionRefusal() is { } refusal)
            {
                batch.Fail(index, new SinkDeliveryException(refusal));
                continue;
            }
            writer.Reset();
            try
            {
                payload.Data.WriteBson(writer);
            }
            catch (Exception e) when (PayloadData.IsUnwritable(e))
            {
                batch.Fail(index, SinkDeliveryException.Unwritable(batch, index, "BSON", e));
                continue;
            }
            if (writer.WrittenSpan.Length > MaxDocumentBytes)
            {
                batch.Fail(index, new SinkDeliveryException(
                    $"A {payload.Data.TypeName} document of {writer.WrittenSpan.Length} bytes exceeds MongoDB's {MaxDocumentBytes}-byte limit."));
                continue;
            }
            var at = collections.FindIndex(c => c.Item1 == payload.Collection);
            if (at < 0)
            {
                collections.Add((payload.Collection, [], []));
                at = collections.Count - 1;
            }
            collections[at].Item2.Add(new RawBsonDocument(writer.ToArray()));
            collections[at].Item3.Add(index);
        }
        return collections;
    }

    /// <summary>
    /// An unordered insert reports each refused document (<c>writeErrors</c>, by index) and, separately, a write concern
    /// the server could not satisfy (<c>writeConcernError</c>): then every document it did insert is written on the
    /// primary but not acknowledged as the <c>uri</c> asked, which fails those payloads as transient. Documents the
    /// server never got to (it stopped the whole command) fail as transient too.
    /// </summary>
    private static void ReportPartialFailure(SinkBatch batch, MongoBulkWriteException<RawBsonDocument> e, string collection,
        List<RawBsonDocument> documents, List<int> indexes)
    {
        var refused = new HashSet<int>();
        foreach (var error in e.WriteErrors)
        {
            refused.Add(error.Index);
            var text = $"MongoDB refused document {error.Index} of {indexes.Count} inserted into {collection}: {error.Message} (code {error.Code})";
            batch.Fail(indexes[error.Index], TransientCodes.Contains(error.Code) ? new SinkTransientException(text) : new SinkDeliveryException(text));
        }
        foreach (var request in e.UnprocessedRequests.OfType<InsertOneModel<RawBsonDocument>>())
        {
            var position = documents.FindIndex(d => ReferenceEquals(d, request.Document));
            if (position < 0 || !refused.Add(position)) continue;
            batch.Fail(indexes[position], new SinkTransientException($"MongoDB did not get to document {position} of {indexes.Count} for {collection}: {e.Message}"));
        }
        if (e.WriteConcernError is { } concern)
        {
            var error = new SinkTransientException(
                $"MongoDB wrote the documents into {collection} but could not satisfy the write concern: {concern.Message} (code {concern.Code})");
            for (var i = 0; i < indexes.Count; i++)
                if (!refused.Contains(i)) batch.Fail(indexes[i], error);
        }
    }

    /// <summary>
    /// The driver's exception as a sink failure: transient when a retry may help. The text carries every message of
    /// the chain (the driver nests the server's answer, e.g. "Authentication failed.", inside its own); the driver's
    /// exception is not kept as the inner one, because startup reports a failure's innermost exception alone.
    /// </summary>
    private static Exception Translate(Exception e, string what)
    {
        var messages = new List<string>();
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (!messages.Exists(m => m.Contains(inner.Message, StringComparison.Ordinal))) messages.Add(inner.Message);
        var text = $"{what}: {string.Join(" ", messages)}";
        return e switch
        {
            MongoAuthenticationException => new SinkDeliveryException(text),
            MongoConnectionException or MongoNotPrimaryException or MongoNodeIsRecoveringException or MongoExecutionTimeoutException
                or TimeoutException or IOException or SocketException => new SinkTransientException(text),
            MongoCommandException command when TransientCodes.Contains(command.Code) => new SinkTransientException(text),
            _ => new SinkDeliveryException(text),
        };
    }
}
