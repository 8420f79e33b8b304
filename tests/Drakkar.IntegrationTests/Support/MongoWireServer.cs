using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MongoDB.Bson;
using MongoDB.Bson.Serialization;

namespace Drakkar.IntegrationTests.Support;

/// <summary>One <c>insert</c> the server received: the raw BSON of every document, as sent.</summary>
public sealed record MongoInsert(string Database, string Collection, bool Ordered, IReadOnlyList<byte[]> Documents);

/// <summary>
/// A MongoDB wire-protocol test server, enough for the official driver: the legacy OP_QUERY handshake and OP_MSG
/// (command section and document sequences), <c>hello</c>/<c>isMaster</c>, <c>ping</c>, the server side of
/// SCRAM-SHA-256 for one known user, optional TLS, and <c>insert</c> with the answers a real server gives to an
/// unordered insert: per-document <c>writeErrors</c> (duplicate key 11000 against a unique field) and
/// <c>writeConcernError</c>. It stands in for mongod, which is not installable here. It reads and writes BSON with
/// the MongoDB.Bson package, never with the product's own code, and the documents it stores are checked with a third,
/// independent decoder (python3-bson).
/// </summary>
public sealed class MongoWireServer : IDisposable
{
    private const int OpReply = 1;
    private const int OpQuery = 2004;
    private const int OpMsg = 2013;

    private readonly string? _user;
    private readonly string? _password;
    private readonly X509Certificate2? _certificate;
    private readonly ConcurrentDictionary<TcpClient, byte> _clients = new();
    private readonly ConcurrentDictionary<string, List<byte[]>> _stored = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _uniqueFields = new(StringComparer.Ordinal);
    private readonly Lock _storeGate = new();
    private TcpListener _listener;
    private CancellationTokenSource _stop = new();
    private int _writeConcernFailures;
    private int _dropNextInsert;

    public MongoWireServer(string? user = null, string? password = null, bool tls = false)
    {
        _user = user;
        _password = password;
        _certificate = tls ? SelfSignedCertificate() : null;
        _listener = Listen(0);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync(_listener, _stop.Token);
    }

    public int Port { get; }

    /// <summary>A connection string for this server (TLS ones skip certificate checks: the certificate is self-signed).</summary>
    public string Uri(string? credentials = null, string options = "")
    {
        var query = string.Join('&', new[] { _certificate is null ? "" : "tls=true&tlsInsecure=true", "serverSelectionTimeoutMS=5000", options }
            .Where(o => o.Length > 0));
        return $"mongodb://{(credentials is null ? "" : credentials + "@")}127.0.0.1:{Port}/?{query}";
    }

    public ConcurrentQueue<MongoInsert> Inserts { get; } = new();

    /// <summary>Every command's name, in arrival order (handshakes and monitoring included).</summary>
    public ConcurrentQueue<string> Commands { get; } = new();

    /// <summary>Connections that completed a TLS handshake.</summary>
    public int TlsSessions => Volatile.Read(ref _tlsSessions);
    private int _tlsSessions;

    /// <summary>The documents the server holds for <c>{database}.{collection}</c>, in insertion order.</summary>
    public IReadOnlyList<BsonDocument> Stored(string database, string collection)
    {
        lock (_storeGate)
            return _stored.TryGetValue($"{database}.{collection}", out var documents) ? [.. documents.Select(d => BsonSerializer.Deserialize<BsonDocument>(d))] : [];
    }

    /// <summary>Like a unique index on <paramref name="field"/>: a second document with the same value is refused with code 11000.</summary>
    public void UniqueIndex(string database, string collection, string field) => _uniqueFields[$"{database}.{collection}"] = field;

    /// <summary>The next <paramref name="count"/> inserts store their documents but answer with a <c>writeConcernError</c>.</summary>
    public void FailWriteConcern(int count) => Volatile.Write(ref _writeConcernFailures, count);

    /// <summary>The next insert's connection is closed without an answer (and nothing is stored).</summary>
    public void DropNextInsert() => Volatile.Write(ref _dropNextInsert, 1);

    /// <summary>An outage: stops listening and closes every connection. <see cref="Start"/> brings the server back on the same port.</summary>
    public void Stop()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var client in _clients.Keys) client.Dispose();
        _clients.Clear();
    }

    /// <summary>Listens again on <see cref="Port"/> after <see cref="Stop"/>, keeping what was stored.</summary>
    public void Start()
    {
        _stop = new CancellationTokenSource();
        _listener = Listen(Port);
        _ = AcceptAsync(_listener, _stop.Token);
    }

    public void Dispose()
    {
        Stop();
        _certificate?.Dispose();
    }

    private static TcpListener Listen(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        return listener;
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop); }
            catch (Exception) { return; }
            _clients[client] = 0;
            _ = ServeAsync(client, stop);
        }
    }

    private async Task ServeAsync(TcpClient client, CancellationToken stop)
    {
        try
        {
            Stream stream = client.GetStream();
            if (_certificate is not null)
            {
                var tls = new SslStream(stream);
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, stop);
                Interlocked.Increment(ref _tlsSessions);
                stream = tls;
            }
            var session = new Session();
            while (true)
            {
                var header = new byte[16];
                await stream.ReadExactlyAsync(header, stop);
                var length = BinaryPrimitives.ReadInt32LittleEndian(header);
                var requestId = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
                var opCode = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12));
                var body = new byte[length - 16];
                await stream.ReadExactlyAsync(body, stop);
                var (command, sequences) = opCode switch
                {
                    OpMsg => ParseMessage(body),
                    OpQuery => (ParseQuery(body), new Dictionary<string, List<byte[]>>()),
                    _ => throw new IOException($"opcode {opCode} is not served"),
                };
                var name = command.GetElement(0).Name;
                Commands.Enqueue(name);
                if (name == "insert" && Interlocked.Exchange(ref _dropNextInsert, 0) == 1) return;
                var reply = Handle(command, sequences, session).ToBson();
                await stream.WriteAsync(opCode == OpMsg ? FrameMessage(reply, requestId) : FrameReply(reply, requestId), stop);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or AuthenticationException or SocketException)
        {
            // The client hung up, the server is stopping, or a TLS handshake failed.
        }
        finally
        {
            _clients.TryRemove(client, out _);
            client.Dispose();
        }
    }

    /// <summary>OP_MSG: flag bits, then sections: kind 0 is the command document, kind 1 a named document sequence.</summary>
    private static (BsonDocument Command, Dictionary<string, List<byte[]>> Sequences) ParseMessage(byte[] body)
    {
        var position = 4;
        BsonDocument? command = null;
        var sequences = new Dictionary<string, List<byte[]>>();
        while (position < body.Length)
        {
            var kind = body[position++];
            if (kind == 0)
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(position));
                command = BsonSerializer.Deserialize<BsonDocument>(body.AsSpan(position, length).ToArray());
                position += length;
                continue;
            }
            var size = BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(position));
            var end = position + size;
            var nameEnd = Array.IndexOf(body, (byte)0, position + 4);
            var name = Encoding.UTF8.GetString(body, position + 4, nameEnd - position - 4);
            var documents = new List<byte[]>();
            for (var at = nameEnd + 1; at < end;)
            {
                var documentLength = BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(at));
                documents.Add(body.AsSpan(at, documentLength).ToArray());
                at += documentLength;
            }
            sequences[name] = documents;
            position = end;
        }
        return (command ?? throw new IOException("OP_MSG without a body section"), sequences);
    }

    /// <summary>OP_QUERY (the driver's first <c>isMaster</c> on a connection): flags, <c>db.$cmd</c>, skip, limit, query.</summary>
    private static BsonDocument ParseQuery(byte[] body)
    {
        var nameEnd = Array.IndexOf(body, (byte)0, 4);
        var queryAt = nameEnd + 1 + 8;
        var length = BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(queryAt));
        var query = BsonSerializer.Deserialize<BsonDocument>(body.AsSpan(queryAt, length).ToArray());
        // A query may wrap the command as { $query: {...}, $readPreference: ... }.
        return query.TryGetValue("$query", out var inner) ? inner.AsBsonDocument : query;
    }

    private BsonDocument Handle(BsonDocument command, Dictionary<string, List<byte[]>> sequences, Session session)
    {
        var name = command.GetElement(0).Name;
        switch (name)
        {
            case "hello":
            case "isMaster":
            case "ismaster":
                var hello = new BsonDocument
                {
                    { "helloOk", true },
                    { "isWritablePrimary", true },
                    { "ismaster", true },
                    { "maxBsonObjectSize", 16 * 1024 * 1024 },
                    { "maxMessageSizeBytes", 48_000_000 },
                    { "maxWriteBatchSize", 100_000 },
                    { "localTime", DateTime.UtcNow },
                    { "connectionId", session.GetHashCode() },
                    { "minWireVersion", 0 },
                    { "maxWireVersion", 21 },
                    { "readOnly", false },
                };
                if (command.Contains("saslSupportedMechs")) hello.Add("saslSupportedMechs", new BsonArray { "SCRAM-SHA-256" });
                hello.Add("ok", 1.0);
                return hello;
            case "ping":
                return RequireAuthentication(session) ?? new BsonDocument("ok", 1.0);
            case "saslStart":
                return SaslStart(command, session);
            case "saslContinue":
                return SaslContinue(command, session);
            case "insert":
                return RequireAuthentication(session) ?? Insert(command, sequences);
            case "endSessions":
                return new BsonDocument("ok", 1.0);
            default:
                return Error($"no such command: '{name}'", 59, "CommandNotFound");
        }
    }

    private BsonDocument? RequireAuthentication(Session session) =>
        _user is not null && !session.Authenticated ? Error("command requires authentication", 13, "Unauthorized") : null;

    private BsonDocument Insert(BsonDocument command, Dictionary<string, List<byte[]>> sequences)
    {
        var database = command["$db"].AsString;
        var collection = command["insert"].AsString;
        var ordered = !command.TryGetValue("ordered", out var flag) || flag.ToBoolean();
        var raw = sequences.TryGetValue("documents", out var sequence)
            ? sequence
            : [.. command["documents"].AsBsonArray.Select(d => d.AsBsonDocument.ToBson())];
        Inserts.Enqueue(new MongoInsert(database, collection, ordered, raw));

        var key = $"{database}.{collection}";
        var writeErrors = new BsonArray();
        var inserted = 0;
        lock (_storeGate)
        {
            var stored = _stored.GetOrAdd(key, _ => []);
            var unique = _uniqueFields.TryGetValue(key, out var field) ? field : null;
            for (var index = 0; index < raw.Count; index++)
            {
                // Documents are parsed only where a unique field needs comparing, so a benchmark measures the sink, not this server.
                if (unique is not null && BsonSerializer.Deserialize<BsonDocument>(raw[index]).TryGetValue(unique, out var value)
                    && stored.Any(s => BsonSerializer.Deserialize<BsonDocument>(s).TryGetValue(unique, out var existing) && existing == value))
                {
                    writeErrors.Add(new BsonDocument
                    {
                        { "index", index },
                        { "code", 11000 },
                        { "errmsg", $"E11000 duplicate key error collection: {key} index: {unique}_1 dup key: {{ {unique}: {value.ToJson()} }}" },
                    });
                    if (ordered) break;
                    continue;
                }
                stored.Add(raw[index]);
                inserted++;
            }
        }
        var reply = new BsonDocument { { "n", inserted } };
        if (writeErrors.Count > 0) reply.Add("writeErrors", writeErrors);
        if (Interlocked.Decrement(ref _writeConcernFailures) >= 0)
        {
            reply.Add("writeConcernError", new BsonDocument
            {
                { "code", 64 },
                { "codeName", "WriteConcernFailed" },
                { "errmsg", "waiting for replication timed out" },
                { "errInfo", new BsonDocument("wtimeout", true) },
            });
        }
        reply.Add("ok", 1.0);
        return reply;
    }

    private BsonDocument SaslStart(BsonDocument command, Session session)
    {
        if (command["mechanism"].AsString != "SCRAM-SHA-256") return Error("unsupported mechanism", 2, "BadValue");
        var clientFirst = Encoding.UTF8.GetString(command["payload"].AsBsonBinaryData.Bytes);
        if (!clientFirst.StartsWith("n,,", StringComparison.Ordinal)) return Error("bad gs2 header", 17, "ProtocolError");
        session.ClientFirstBare = clientFirst[3..];
        var attributes = session.ClientFirstBare.Split(',').ToDictionary(a => a[0], a => a[2..]);
        session.User = attributes['n'];
        session.Salt = RandomNumberGenerator.GetBytes(16);
        session.Nonce = attributes['r'] + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        session.ServerFirst = $"r={session.Nonce},s={Convert.ToBase64String(session.Salt)},i=4096";
        return new BsonDocument
        {
            { "conversationId", 1 },
            { "done", false },
            { "payload", new BsonBinaryData(Encoding.UTF8.GetBytes(session.ServerFirst)) },
            { "ok", 1.0 },
        };
    }

    private BsonDocument SaslContinue(BsonDocument command, Session session)
    {
        var clientFinal = Encoding.UTF8.GetString(command["payload"].AsBsonBinaryData.Bytes);
        if (session.Authenticated) return new BsonDocument { { "conversationId", 1 }, { "done", true }, { "payload", new BsonBinaryData([]) }, { "ok", 1.0 } };
        var proofAt = clientFinal.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0) return Error("Authentication failed.", 18, "AuthenticationFailed");
        var withoutProof = clientFinal[..proofAt];
        var proof = Convert.FromBase64String(clientFinal[(proofAt + 3)..]);
        if (withoutProof != $"c=biws,r={session.Nonce}" || session.User != _user) return Error("Authentication failed.", 18, "AuthenticationFailed");
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(_password!), session.Salt, 4096, HashAlgorithmName.SHA256, 32);
        var storedKey = SHA256.HashData(HMACSHA256.HashData(salted, "Client Key"u8.ToArray()));
        var authMessage = Encoding.UTF8.GetBytes($"{session.ClientFirstBare},{session.ServerFirst},{withoutProof}");
        var clientSignature = HMACSHA256.HashData(storedKey, authMessage);
        var clientKey = proof.Zip(clientSignature, (a, b) => (byte)(a ^ b)).ToArray();
        if (!SHA256.HashData(clientKey).SequenceEqual(storedKey)) return Error("Authentication failed.", 18, "AuthenticationFailed");
        session.Authenticated = true;
        var serverSignature = HMACSHA256.HashData(HMACSHA256.HashData(salted, "Server Key"u8.ToArray()), authMessage);
        return new BsonDocument
        {
            { "conversationId", 1 },
            { "done", true },
            { "payload", new BsonBinaryData(Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(serverSignature))) },
            { "ok", 1.0 },
        };
    }

    private static BsonDocument Error(string message, int code, string codeName) => new()
    {
        { "ok", 0.0 },
        { "errmsg", message },
        { "code", code },
        { "codeName", codeName },
    };

    private static byte[] FrameMessage(byte[] document, int responseTo)
    {
        var message = new byte[16 + 4 + 1 + document.Length];
        Header(message, responseTo, OpMsg);
        message[20] = 0;
        document.CopyTo(message, 21);
        return message;
    }

    /// <summary>OP_REPLY: flags, cursor id 0, starting from 0, one document.</summary>
    private static byte[] FrameReply(byte[] document, int responseTo)
    {
        var message = new byte[16 + 20 + document.Length];
        Header(message, responseTo, OpReply);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(32), 1);
        document.CopyTo(message, 36);
        return message;
    }

    private static void Header(byte[] message, int responseTo, int opCode)
    {
        BinaryPrimitives.WriteInt32LittleEndian(message, message.Length);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), Random.Shared.Next());
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(8), responseTo);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(12), opCode);
    }

    private static X509Certificate2 SelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        // SslStream needs the private key in a form the platform's TLS can use: round-trip through PKCS#12.
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }

    private sealed class Session
    {
        public string ClientFirstBare = "";
        public string ServerFirst = "";
        public string Nonce = "";
        public string User = "";
        public byte[] Salt = [];
        public bool Authenticated;
    }
}
