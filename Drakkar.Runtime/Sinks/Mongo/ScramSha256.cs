using System.Security.Cryptography;
using System.Text;

namespace Drakkar.Sinks.Mongo;

/// <summary>
/// The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as MongoDB runs it over <c>saslStart</c>/<c>saslContinue</c>.
/// The password is used as given: SASLprep is the identity for the ASCII passwords this sink expects.
/// </summary>
internal sealed class ScramSha256
{
    private const int MinIterations = 4096;
    private readonly string _user;
    private readonly string _password;
    private readonly string _clientNonce;
    private string _clientFirstBare = "";
    private byte[] _expectedServerSignature = [];

    public ScramSha256(string user, string password, string? clientNonce = null)
    {
        _user = user;
        _password = password;
        _clientNonce = clientNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
    }

    public byte[] ClientFirst()
    {
        _clientFirstBare = $"n={_user.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal)},r={_clientNonce}";
        return Encoding.UTF8.GetBytes("n,," + _clientFirstBare);
    }

    /// <summary>Answers the server's challenge with the client proof.</summary>
    public byte[] ClientFinal(byte[] serverFirstBytes)
    {
        var serverFirst = Encoding.UTF8.GetString(serverFirstBytes);
        var fields = Fields(serverFirst);
        if (!fields.TryGetValue('r', out var nonce) || !nonce.StartsWith(_clientNonce, StringComparison.Ordinal) || nonce.Length == _clientNonce.Length)
            throw new SinkDeliveryException("MongoDB SCRAM: the server's nonce does not extend ours; refusing to authenticate.");
        if (!fields.TryGetValue('s', out var saltText) || !fields.TryGetValue('i', out var iterationText) ||
            !int.TryParse(iterationText, System.Globalization.CultureInfo.InvariantCulture, out var iterations))
            throw new SinkDeliveryException("MongoDB SCRAM: the server's challenge lacks salt or iteration count.");
        if (iterations < MinIterations)
            throw new SinkDeliveryException($"MongoDB SCRAM: the server asked for {iterations} iterations, fewer than the minimum {MinIterations}.");
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(_password), Convert.FromBase64String(saltText), iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var withoutProof = $"c=biws,r={nonce}";
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{serverFirst},{withoutProof}");
        var signature = HMACSHA256.HashData(storedKey, authMessage);
        for (var i = 0; i < clientKey.Length; i++) clientKey[i] ^= signature[i];
        _expectedServerSignature = HMACSHA256.HashData(HMACSHA256.HashData(salted, "Server Key"u8), authMessage);
        return Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(clientKey)}");
    }

    /// <summary>Checks the server proved it knows the password too (mutual authentication).</summary>
    public void VerifyServerFinal(byte[] serverFinalBytes)
    {
        var fields = Fields(Encoding.UTF8.GetString(serverFinalBytes));
        if (fields.TryGetValue('e', out var error)) throw new SinkDeliveryException($"MongoDB SCRAM: the server rejected the proof ({error}).");
        if (!fields.TryGetValue('v', out var verifier) ||
            !CryptographicOperations.FixedTimeEquals(Convert.FromBase64String(verifier), _expectedServerSignature))
            throw new SinkDeliveryException("MongoDB SCRAM: the server's signature is wrong; it does not know the password.");
    }

    private static Dictionary<char, string> Fields(string message)
    {
        var fields = new Dictionary<char, string>();
        foreach (var part in message.Split(','))
            if (part.Length >= 2 && part[1] == '=') fields[part[0]] = part[2..];
        return fields;
    }
}
