using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Drakkar.Sinks.Mongo;

namespace Drakkar.IntegrationTests.Support;

/// <summary>One <c>insert</c> the server received: the raw BSON of every document, as sent.</summary>
public sealed record MongoInsert(string Database, string Collection, bool Ordered, IReadOnlyList<byte[]> Documents);

/// <summary>
/// A MongoDB wire-protocol test server: it parses OP_MSG (command section and document sequences), answers
/// <c>hello</c>/<c>isMaster</c>, runs the server side of SCRAM-SHA-256 against one known user, and records inserts.
/// It stands in for mongod, which is not installable here; the BSON it records is checked with an independent decoder.
/// </summary>
public sealed class MongoWireServer : IDisposable
{
    private const int OpMsg = 2013;
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly string? _user;
    private readonly string? _password;
    private readonly bool _helloUnsupported;
    private readonly ConcurrentBag<TcpClient> _clients = [];
    private int _failInserts;
    private int _dropNextInsert;

    public MongoWireServer(string? user = null, string? password = null, bool helloUnsupported = false)
    {
        _user = user;
        _password = password;
        _helloUnsupported = helloUnsupported;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    public int Port { get; }
    public ConcurrentQueue<MongoInsert> Inserts { get; } = new();
    public ConcurrentQueue<string> Commands { get; } = new();

    /// <summary>The next <paramref name="count"/> inserts answer <c>ok: 0</c> with <paramref name="code"/>.</summary>
    public void FailInserts(int count, int code = 11600)
    {
        FailCode = code;
        Volatile.Write(ref _failInserts, count);
    }

    public int FailCode { get; private set; }

    /// <summary>The next insert's connection is closed without an answer.</summary>
    public void DropNextInsert() => Volatile.Write(ref _dropNextInsert, 1);

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var client in _clients) client.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _clients.Add(client);
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var stream = client.GetStream();
        var session = new Session();
        try
        {
            while (true)
            {
                var header = new byte[16];
                await stream.ReadExactlyAsync(header, _stop.Token);
                var length = BinaryPrimitives.ReadInt32LittleEndian(header);
                var requestId = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
                if (BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12)) != OpMsg) throw new IOException("only OP_MSG is served");
                var body = new byte[length - 16];
                await stream.ReadExactlyAsync(body, _stop.Token);
                var (command, sequences) = Parse(body);
                Commands.Enqueue(command.FirstName);
                if (command.FirstName == "insert" && Interlocked.Exchange(ref _dropNextInsert, 0) == 1)
                {
                    client.Close();
                    return;
                }
                var reply = Handle(command, sequences, session);
                await stream.WriteAsync(Frame(reply, requestId), _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client hung up or the server is stopping.
        }
        finally
        {
            client.Dispose();
        }
    }

    private static (BsonDocument Command, Dictionary<string, List<byte[]>> Sequences) Parse(byte[] body)
    {
        var position = 4;
        BsonDocument? command = null;
        var sequences = new Dictionary<string, List<byte[]>>();
        while (position < body.Length)
        {
            var kind = body[position++];
            if (kind == 0)
            {
                command = BsonReader.Read(body.AsSpan(position), out var length);
                position += length;
                continue;
            }
            var size = BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(position));
            var end = position + size;
            var nameEnd = Array.IndexOf(body, (byte)0, position + 4);
            var name = Encoding.UTF8.GetString(body, position + 4, nameEnd - position - 4);
            var documents = new List<byte[]>();
            var at = nameEnd + 1;
            while (at < end)
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

    private byte[] Handle(BsonDocument command, Dictionary<string, List<byte[]>> sequences, Session session)
    {
        switch (command.FirstName)
        {
            case "hello" when _helloUnsupported:
                return Error("no such command: 'hello'", 59);
            case "hello":
            case "isMaster":
                return Document(w =>
                {
                    w.WriteBoolean("isWritablePrimary", true);
                    w.WriteBoolean("ismaster", true);
                    w.WriteInt32("maxBsonObjectSize", 16 * 1024 * 1024);
                    w.WriteInt32("maxMessageSizeBytes", 48_000_000);
                    w.WriteInt32("maxWriteBatchSize", 100_000);
                    w.WriteInt32("minWireVersion", 0);
                    w.WriteInt32("maxWireVersion", 17);
                    w.WriteDouble("ok", 1);
                });
            case "saslStart":
                return SaslStart(command, session);
            case "saslContinue":
                return SaslContinue(command, session);
            case "insert":
                if (_user is not null && !session.Authenticated) return Error("command insert requires authentication", 13);
                if (Interlocked.Decrement(ref _failInserts) >= 0) return Error("interrupted at shutdown", FailCode);
                var documents = sequences.TryGetValue("documents", out var sequence) ? sequence : [];
                Inserts.Enqueue(new MongoInsert(command.String("$db")!, command.String("insert")!, command["ordered"] is true, documents));
                return Document(w =>
                {
                    w.WriteInt32("n", documents.Count);
                    w.WriteDouble("ok", 1);
                });
            default:
                return Error($"no such command: '{command.FirstName}'", 59);
        }
    }

    private byte[] SaslStart(BsonDocument command, Session session)
    {
        if (command.String("mechanism") != "SCRAM-SHA-256") return Error("unsupported mechanism", 2);
        var clientFirst = Encoding.UTF8.GetString(((BsonBinary)command["payload"]!).Data);
        if (!clientFirst.StartsWith("n,,", StringComparison.Ordinal)) return Error("bad gs2 header", 17);
        session.ClientFirstBare = clientFirst[3..];
        var attributes = session.ClientFirstBare.Split(',').ToDictionary(a => a[0], a => a[2..]);
        session.User = attributes['n'];
        session.Salt = RandomNumberGenerator.GetBytes(16);
        session.Nonce = attributes['r'] + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        session.ServerFirst = $"r={session.Nonce},s={Convert.ToBase64String(session.Salt)},i=4096";
        var payload = Encoding.UTF8.GetBytes(session.ServerFirst);
        return Document(w =>
        {
            w.WriteInt32("conversationId", 1);
            w.WriteBoolean("done", false);
            w.WriteBinary("payload", payload);
            w.WriteDouble("ok", 1);
        });
    }

    private byte[] SaslContinue(BsonDocument command, Session session)
    {
        var clientFinal = Encoding.UTF8.GetString(((BsonBinary)command["payload"]!).Data);
        var proofAt = clientFinal.LastIndexOf(",p=", StringComparison.Ordinal);
        var withoutProof = clientFinal[..proofAt];
        var proof = Convert.FromBase64String(clientFinal[(proofAt + 3)..]);
        if (withoutProof != $"c=biws,r={session.Nonce}" || session.User != _user) return Error("Authentication failed.", 18);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(_password!), session.Salt, 4096, HashAlgorithmName.SHA256, 32);
        var storedKey = SHA256.HashData(HMACSHA256.HashData(salted, Encoding.UTF8.GetBytes("Client Key")));
        var authMessage = Encoding.UTF8.GetBytes($"{session.ClientFirstBare},{session.ServerFirst},{withoutProof}");
        var clientSignature = HMACSHA256.HashData(storedKey, authMessage);
        var clientKey = proof.Zip(clientSignature, (a, b) => (byte)(a ^ b)).ToArray();
        if (!SHA256.HashData(clientKey).SequenceEqual(storedKey)) return Error("Authentication failed.", 18);
        session.Authenticated = true;
        var serverSignature = HMACSHA256.HashData(HMACSHA256.HashData(salted, Encoding.UTF8.GetBytes("Server Key")), authMessage);
        var payload = Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(serverSignature));
        return Document(w =>
        {
            w.WriteInt32("conversationId", 1);
            w.WriteBoolean("done", true);
            w.WriteBinary("payload", payload);
            w.WriteDouble("ok", 1);
        });
    }

    private static byte[] Error(string message, int code) => Document(w =>
    {
        w.WriteDouble("ok", 0);
        w.WriteString("errmsg", message);
        w.WriteInt32("code", code);
    });

    private static byte[] Document(Action<BsonWriter> body)
    {
        var writer = new BsonWriter();
        writer.WriteStartDocument();
        body(writer);
        writer.WriteEnd();
        return writer.ToArray();
    }

    private static byte[] Frame(byte[] document, int responseTo)
    {
        var message = new byte[16 + 4 + 1 + document.Length];
        BinaryPrimitives.WriteInt32LittleEndian(message, message.Length);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), Random.Shared.Next());
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(8), responseTo);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(12), OpMsg);
        message[20] = 0;
        document.CopyTo(message, 21);
        return message;
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
