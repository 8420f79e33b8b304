namespace Drakkar.Sinks.Mongo;

/// <summary>
/// Inserts each payload's data as a BSON document into its collection of the configured database (SPEC S10),
/// speaking OP_MSG itself: one ordered <c>insert</c> per collection per batch (split only at the server's batch and
/// message limits). The server assigns <c>_id</c>. Not idempotent: a retried insert adds the documents again.
/// </summary>
internal sealed class MongoSink : ConnectedSink<MongoConnection>
{
    /// <summary>Server error codes that mean "not now" rather than "not this".</summary>
    private static readonly int[] TransientCodes = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436];

    private readonly MongoEndpoint _endpoint;
    private readonly string _database;
    private readonly BsonWriter _bson = new(1024);

    internal MongoSink(string name, MongoSinkConfig config, SinkSecretMasker masker) : base(name)
    {
        var path = $"sinks.mongo.{name}";
        if (string.IsNullOrWhiteSpace(config.Uri)) throw new SinkConfigurationException($"{path}.uri is required.");
        if (string.IsNullOrWhiteSpace(config.Database)) throw new SinkConfigurationException($"{path}.database is required.");
        _endpoint = MongoEndpoint.Parse(config.Uri, path);
        _database = config.Database;
        masker.AddCredentialsOf(config.Uri);
        masker.Add(_endpoint.Password);
    }

    public override string Kind => "mongo";
    public override bool IsIdempotent => false;
    protected override string Destination => $"MongoDB at {_endpoint.Host}:{_endpoint.Port}";

    protected override Task<MongoConnection> OpenAsync(CancellationToken cancellationToken) =>
        MongoConnection.OpenAsync(_endpoint, cancellationToken);

    protected override async ValueTask DeliverAsync(MongoConnection connection, SinkBatch batch, CancellationToken cancellationToken)
    {
        foreach (var (collection, documents) in Encode(batch, connection.MaxBsonObjectBytes))
        {
            foreach (var chunk in Chunks(documents, connection))
            {
                BsonDocument reply;
                try
                {
                    reply = await connection.InsertAsync(_database, collection, chunk, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or FormatException)
                {
                    // The stream may hold half a reply; never reuse it.
                    await DropAsync().ConfigureAwait(false);
                    if (e is OperationCanceledException) throw;
                    throw new SinkTransientException($"MongoDB connection to {_endpoint.Host}:{_endpoint.Port} lost during insert into {collection}: {e.Message}", e);
                }
                CheckInsert(reply, collection, chunk.Count);
            }
        }
    }

    private List<(string Collection, List<ReadOnlyMemory<byte>> Documents)> Encode(SinkBatch batch, int maxDocumentBytes)
    {
        var groups = new List<(string, List<ReadOnlyMemory<byte>>)>();
        foreach (var payload in batch.Payloads)
        {
            var mongo = (MongoPayload)payload;
            if (string.IsNullOrEmpty(mongo.Collection) || mongo.Collection.Contains('\0', StringComparison.Ordinal) || mongo.Collection.StartsWith('$'))
                throw new SinkDeliveryException($"'{mongo.Collection}' is not a valid MongoDB collection name (a {mongo.Data.TypeName} payload).");
            _bson.Reset();
            mongo.Data.WriteBson(_bson);
            if (_bson.WrittenSpan.Length > maxDocumentBytes)
                throw new SinkDeliveryException($"A {mongo.Data.TypeName} document of {_bson.WrittenSpan.Length} bytes exceeds MongoDB's {maxDocumentBytes}-byte limit.");
            var index = groups.FindIndex(g => g.Item1 == mongo.Collection);
            if (index < 0)
            {
                groups.Add((mongo.Collection, []));
                index = groups.Count - 1;
            }
            groups[index].Item2.Add(_bson.ToArray());
        }
        return groups;
    }

    /// <summary>Splits one collection's documents at the server's write-batch and message-size limits.</summary>
    private static IEnumerable<List<ReadOnlyMemory<byte>>> Chunks(List<ReadOnlyMemory<byte>> documents, MongoConnection connection)
    {
        // Headroom for the header, the command document and the sequence's name.
        var budget = connection.MaxMessageBytes - 16 * 1024;
        var chunk = new List<ReadOnlyMemory<byte>>();
        var size = 0;
        foreach (var document in documents)
        {
            if (chunk.Count > 0 && (chunk.Count >= connection.MaxWriteBatchSize || size + document.Length > budget))
            {
                yield return chunk;
                chunk = [];
                size = 0;
            }
            chunk.Add(document);
            size += document.Length;
        }
        if (chunk.Count > 0) yield return chunk;
    }

    private static void CheckInsert(BsonDocument reply, string collection, int sent)
    {
        if (reply.Number("ok") != 1)
        {
            var code = (int)(reply.Number("code") ?? 0);
            var text = $"MongoDB insert into {collection} failed: {reply.String("errmsg") ?? "no reason given"} (code {code})";
            throw TransientCodes.Contains(code) ? new SinkTransientException(text) : new SinkDeliveryException(text);
        }
        if (reply["writeErrors"] is BsonDocument errors && errors.Elements.Count > 0)
        {
            var first = errors.Values.OfType<BsonDocument>().FirstOrDefault();
            var index = first?.Number("index") ?? 0;
            throw new SinkDeliveryException(
                $"MongoDB insert into {collection} stopped at document {index} of {sent} ({index} were inserted): {first?.String("errmsg")} (code {first?.Number("code")})");
        }
        if (reply["writeConcernError"] is BsonDocument concern)
            throw new SinkTransientException($"MongoDB insert into {collection} was not acknowledged by the write concern: {concern.String("errmsg")}");
    }
}
