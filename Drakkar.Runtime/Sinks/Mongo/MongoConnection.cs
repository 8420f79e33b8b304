using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Drakkar.Sinks.Mongo;

/// <summary>
/// One connection speaking MongoDB's OP_MSG (opcode 2013): a command document (section kind 0), optionally followed
/// by a document sequence (section kind 1) — how <c>insert</c> ships its documents without re-nesting them. Not
/// thread-safe: the sink serializes its use.
/// </summary>
internal sealed class MongoConnection : IAsyncDisposable
{
    private const int OpMsg = 2013;
    private const int MinWireVersionWithOpMsg = 6;
    private const uint ChecksumPresent = 1;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly ArrayBufferWriter<byte> _out = new(16 * 1024);
    private readonly BsonWriter _command = new(256);
    private int _requestId;

    private MongoConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public int MaxMessageBytes { get; private set; } = 48_000_000;
    public int MaxBsonObjectBytes { get; private set; } = 16 * 1024 * 1024;
    public int MaxWriteBatchSize { get; private set; } = 100_000;

    /// <summary>Connects, runs the <c>hello</c> handshake (falling back to <c>isMaster</c>) and authenticates when the endpoint has credentials.</summary>
    public static async Task<MongoConnection> OpenAsync(MongoEndpoint endpoint, CancellationToken cancellationToken)
    {
        var socket = await TcpSocket.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken).ConfigureAwait(false);
        var connection = new MongoConnection(socket);
        try
        {
            await connection.HandshakeAsync(cancellationToken).ConfigureAwait(false);
            if (endpoint.User is not null)
                await connection.AuthenticateAsync(endpoint.User, endpoint.Password!, endpoint.AuthDatabase, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Runs <c>insert</c> with <paramref name="documents"/> (each a complete BSON document) as the <c>documents</c>
    /// sequence; ordered, so the server stops at the first failing document.
    /// </summary>
    public async Task<BsonDocument> InsertAsync(string database, string collection, IReadOnlyList<ReadOnlyMemory<byte>> documents,
        CancellationToken cancellationToken)
    {
        _command.Reset();
        _command.WriteStartDocument();
        _command.WriteString("insert", collection);
        _command.WriteBoolean("ordered", true);
        _command.WriteString("$db", database);
        _command.WriteEnd();
        return await RunAsync(_command.WrittenSpan, "documents", documents, cancellationToken).ConfigureAwait(false);
    }

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        var hello = await CommandAsync(w => w.WriteInt32("hello", 1), "admin", cancellationToken).ConfigureAwait(false);
        if (hello.Number("ok") != 1)
            hello = await CommandAsync(w => w.WriteInt32("isMaster", 1), "admin", cancellationToken).ConfigureAwait(false);
        if (hello.Number("ok") != 1)
            throw new SinkDeliveryException($"MongoDB refused the handshake: {hello.String("errmsg") ?? "no reason given"}");
        var wire = hello.Number("maxWireVersion") ?? 0;
        if (wire < MinWireVersionWithOpMsg)
            throw new SinkDeliveryException($"MongoDB server is too old (wire version {wire}); OP_MSG needs MongoDB 3.6 or newer.");
        if (hello.Number("maxMessageSizeBytes") is { } maxMessage) MaxMessageBytes = (int)maxMessage;
        if (hello.Number("maxBsonObjectSize") is { } maxBson) MaxBsonObjectBytes = (int)maxBson;
        if (hello.Number("maxWriteBatchSize") is { } maxBatch) MaxWriteBatchSize = (int)maxBatch;
    }

    private async Task AuthenticateAsync(string user, string password, string database, CancellationToken cancellationToken)
    {
        var scram = new ScramSha256(user, password);
        var clientFirst = scram.ClientFirst();
        var reply = await CommandAsync(w =>
        {
            w.WriteInt32("saslStart", 1);
            w.WriteString("mechanism", "SCRAM-SHA-256");
            w.WriteBinary("payload", clientFirst);
            w.WriteInt32("autoAuthorize", 1);
            w.WriteStartDocument("options");
            w.WriteBoolean("skipEmptyExchange", true);
            w.WriteEnd();
        }, database, cancellationToken).ConfigureAwait(false);
        Check(reply, user, database);
        var conversation = reply["conversationId"];
        var clientFinal = scram.ClientFinal(Payload(reply));
        reply = await CommandAsync(w => Continue(w, conversation, clientFinal), database, cancellationToken).ConfigureAwait(false);
        Check(reply, user, database);
        scram.VerifyServerFinal(Payload(reply));
        while (reply["done"] is not true)
        {
            reply = await CommandAsync(w => Continue(w, conversation, []), database, cancellationToken).ConfigureAwait(false);
            Check(reply, user, database);
        }
    }

    private static void Continue(BsonWriter writer, object? conversation, byte[] payload)
    {
        writer.WriteInt32("saslContinue", 1);
        if (conversation is long id) writer.WriteInt64("conversationId", id);
        else writer.WriteInt32("conversationId", conversation is int small ? small : 1);
        writer.WriteBinary("payload", payload);
    }

    private static void Check(BsonDocument reply, string user, string database)
    {
        if (reply.Number("ok") != 1)
            throw new SinkDeliveryException(
                $"MongoDB authentication of user '{user}' on database '{database}' failed: {reply.String("errmsg") ?? "no reason given"}");
    }

    private static byte[] Payload(BsonDocument reply) =>
        reply["payload"] is BsonBinary binary ? binary.Data : throw new SinkDeliveryException("MongoDB SCRAM: the reply has no payload.");

    private async Task<BsonDocument> CommandAsync(Action<BsonWriter> body, string database, CancellationToken cancellationToken)
    {
        _command.Reset();
        _command.WriteStartDocument();
        body(_command);
        _command.WriteString("$db", database);
        _command.WriteEnd();
        return await RunAsync(_command.WrittenSpan, null, [], cancellationToken).ConfigureAwait(false);
    }

    private Task<BsonDocument> RunAsync(ReadOnlySpan<byte> command, string? sequenceName, IReadOnlyList<ReadOnlyMemory<byte>> documents,
        CancellationToken cancellationToken)
    {
        var requestId = ++_requestId;
        Compose(command, sequenceName, documents, requestId);
        return SendAsync(requestId, cancellationToken);
    }

    private async Task<BsonDocument> SendAsync(int requestId, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.WriteAsync(_out.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _out.ResetWrittenCount();
        }
        return await ReadReplyAsync(requestId, cancellationToken).ConfigureAwait(false);
    }

    private void Compose(ReadOnlySpan<byte> command, string? sequenceName, IReadOnlyList<ReadOnlyMemory<byte>> documents, int requestId)
    {
        var header = _out.GetSpan(20);
        // Length (patched below), requestID, responseTo, opCode, flagBits.
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], requestId);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], OpMsg);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], 0);
        _out.Advance(20);
        _out.GetSpan(1)[0] = 0;
        _out.Advance(1);
        _out.Write(command);
        if (sequenceName is not null)
        {
            var nameBytes = Encoding.UTF8.GetByteCount(sequenceName);
            var size = 4 + nameBytes + 1;
            foreach (var document in documents) size += document.Length;
            var start = _out.GetSpan(5 + nameBytes + 1);
            start[0] = 1;
            BinaryPrimitives.WriteInt32LittleEndian(start[1..], size);
            Encoding.UTF8.GetBytes(sequenceName, start[5..]);
            start[5 + nameBytes] = 0;
            _out.Advance(5 + nameBytes + 1);
            foreach (var document in documents) _out.Write(document.Span);
        }
        if (_out.WrittenCount > MaxMessageBytes)
            throw new SinkDeliveryException($"MongoDB message of {_out.WrittenCount} bytes exceeds the server's limit of {MaxMessageBytes}.");
        // The writer's memory is contiguous, so the length can be patched in place.
        var written = System.Runtime.InteropServices.MemoryMarshal.AsMemory(_out.WrittenMemory);
        BinaryPrimitives.WriteInt32LittleEndian(written.Span, _out.WrittenCount);
    }

    private async Task<BsonDocument> ReadReplyAsync(int requestId, CancellationToken cancellationToken)
    {
        var header = new byte[16];
        await _stream.ReadExactlyAsync(header, cancellationToken).ConfigureAwait(false);
        var length = BinaryPrimitives.ReadInt32LittleEndian(header);
        var responseTo = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
        var opCode = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12));
        if (length < 21 || length > MaxMessageBytes + 1024)
            throw new IOException($"MongoDB sent a reply of implausible length {length}");
        var body = new byte[length - 16];
        await _stream.ReadExactlyAsync(body, cancellationToken).ConfigureAwait(false);
        if (opCode != OpMsg || responseTo != requestId)
            throw new IOException($"MongoDB reply out of step (opcode {opCode}, answers request {responseTo}, expected {requestId})");
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(body);
        var end = body.Length - ((flags & ChecksumPresent) != 0 ? 4 : 0);
        var position = 4;
        while (position < end)
        {
            var kind = body[position++];
            if (kind == 0) return BsonReader.Read(body.AsSpan(position, end - position));
            // A reply carries its document in section 0; skip any sequence before it.
            position += BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(position));
        }
        throw new IOException("MongoDB reply has no body section");
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
    }
}
