namespace Drakkar.Runtime.Tests.Configuration;

using static ConfigTestSupport;

public sealed class SecretMaskerTests
{
    [Theory]
    [InlineData("redis://user:pass@host:6379/0", "redis://user:***@host:6379/0")]
    [InlineData("redis://:pass@host:6379", "redis://:***@host:6379")]
    [InlineData("postgresql://u:p@h/db", "postgresql://u:***@h/db")]
    [InlineData("mongodb://admin:p%40ss@m1:27017,m2:27017/db?authSource=admin", "mongodb://admin:***@m1:27017,m2:27017/db?authSource=admin")]
    [InlineData("https://user:p@ss@example.com/x", "https://user:***@example.com/x")]
    [InlineData("https://ghp_token123@github.com/org/repo", "https://***@github.com/org/repo")]
    [InlineData("http://example.com:8080/path", "http://example.com:8080/path")]
    public void Url_credentials_are_masked_and_the_rest_kept(string input, string expected) =>
        Assert.Equal(expected, SecretMasker.Mask(input));

    [Theory]
    [InlineData("postgresql://app:pa?ss@db:5432/app", "postgresql://app:***@db:5432/app")]
    [InlineData("redis://:p#ssw0rd@cache:6379/0", "redis://:***@cache:6379/0")]
    [InlineData("mongodb://admin:a/b/c@m1:27017/db", "mongodb://admin:***@m1:27017/db")]
    [InlineData("https://u:x?y#z/w@p@api.example.com/in?q=1", "https://u:***@api.example.com/in?q=1")]
    [InlineData("error at postgresql://app:s/ec?r#et@db/app: refused", "error at postgresql://app:***@db/app: refused")]
    public void Url_passwords_with_delimiters_are_masked(string input, string expected) =>
        Assert.Equal(expected, SecretMasker.Mask(input));

    [Theory]
    [InlineData("http://host:8080/x?to=a@b.example")]
    [InlineData("https://example.com/p?mail=user@example.com#frag")]
    public void A_port_and_an_at_sign_in_the_path_are_not_taken_for_credentials(string input) =>
        Assert.Equal(input, SecretMasker.Mask(input));

    [Theory]
    [InlineData("X-Auth")]
    [InlineData("X-Signature")]
    [InlineData("X-Hub-Signature-256")]
    [InlineData("Proxy-Authorization")]
    [InlineData("X-Api-Key")]
    public void Credential_header_names_are_secret_names(string header) => Assert.True(SecretMasker.IsSecretName(header));

    [Theory]
    [InlineData("PATH")]
    [InlineData("HOME")]
    [InlineData("LANG")]
    [InlineData("X-Team")]
    [InlineData("KEYBOARD")]
    [InlineData("url")]
    [InlineData("Content-Type")]
    public void Ordinary_names_are_not_secret_names(string name) => Assert.False(SecretMasker.IsSecretName(name));

    [Theory]
    [InlineData("Host=db;Username=app;Password=s3cret;Database=app", "Host=db;Username=app;Password=***;Database=app")]
    [InlineData("Host=db;Password=with spaces and ;Database=app", "Host=db;Password=***;Database=app")]
    [InlineData("Host=db; password = 'quoted;value' ;Database=app", "Host=db; password = *** ;Database=app")]
    [InlineData("Host=db;SSL Password=abc", "Host=db;SSL Password=***")]
    [InlineData("host=db user=app password=s3cret dbname=app", "host=db user=app password=*** dbname=app")]
    [InlineData("Host=db;Username=app;Database=app", "Host=db;Username=app;Database=app")]
    // Task output that prints a connection string: the value ends at the line, not at the next ';' lines later.
    [InlineData("Password=s3cret\nstep 1 done\nstep 2 done; exit 0", "Password=***\nstep 1 done\nstep 2 done; exit 0")]
    [InlineData("x;Password=s3cret\r\nnext line", "x;Password=***\r\nnext line")]
    public void Dsn_passwords_are_masked(string input, string expected) =>
        Assert.Equal(expected, SecretMasker.Mask(input));

    [Theory]
    [InlineData("https://api.example.com/in?token=abc123&page=2", "https://api.example.com/in?token=***&page=2")]
    [InlineData("postgresql://db/app?sslmode=require&password=pw", "postgresql://db/app?sslmode=require&password=***")]
    [InlineData("https://maps.example.com/api?key=AIzaXYZ", "https://maps.example.com/api?key=***")]
    [InlineData("https://x.example/?api_key=k&access_token=t", "https://x.example/?api_key=***&access_token=***")]
    [InlineData("delivery failed: 401 Authorization: Bearer eyJhbGciOi.payload.sig", "delivery failed: 401 Authorization: Bearer ***")]
    [InlineData("""{"user":"a","password":"p"}""", """{"user":"a","password":"***"}""")]
    public void Query_parameters_tokens_and_json_secrets_are_masked(string input, string expected) =>
        Assert.Equal(expected, SecretMasker.Mask(input));

    [Theory]
    [InlineData("")]
    [InlineData("plain text with no secrets, key_prefix=drakkar:")]
    [InlineData("kafka-1:9092,kafka-2:9092")]
    public void Text_without_secrets_is_unchanged(string input) =>
        Assert.Equal(input, SecretMasker.Mask(input));

    [Fact]
    public void Effective_yaml_masks_every_secret()
    {
        var config = ConfigLoader.LoadFromYaml("""
            executor:
              env: { DB_PASSWORD: hunter2, LANG: C }
            sinks:
              postgres:
                main: { dsn: "Host=db;Username=app;Password=pgpass;Database=app" }
                url: { dsn: "postgresql://app:pgpass2@db/app" }
              mongo:
                docs: { uri: "mongodb://m:mongopass@mongo:27017", database: d }
              http:
                hook:
                  url: "https://h.example/in?token=urltoken"
                  headers: { Authorization: "Bearer bearertoken", X-Api-Key: apikey, X-Session-Token: sessval42, X-Secret-Thing: shh, X-Team: search }
              redis:
                cache: { url: "redis://:redispass@redis:6379/0" }
              custom:
                s3: { archive: { bucket: b, secret_access_key: s3secret } }
                audit: { events: { path: /tmp/newcomer60/out/audit.jsonl } }
            debug: { auth_token: debugtoken }
            """, Env());

        var yaml = SecretMasker.ToMaskedYaml(config);

        foreach (var secret in new[] { "hunter2", "pgpass", "pgpass2", "mongopass", "urltoken", "bearertoken", "apikey", "sessval42", "shh", "redispass", "s3secret", "debugtoken" })
            Assert.DoesNotContain(secret, yaml, StringComparison.Ordinal);
        Assert.Contains("dsn: \"Host=db;Username=app;Password=***;Database=app\"", yaml, StringComparison.Ordinal);
        Assert.Contains("uri: \"mongodb://m:***@mongo:27017\"", yaml, StringComparison.Ordinal);
        Assert.Contains("url: \"redis://:***@redis:6379/0\"", yaml, StringComparison.Ordinal);
        Assert.Contains("Authorization: \"***\"", yaml, StringComparison.Ordinal);
        Assert.Contains("auth_token: \"***\"", yaml, StringComparison.Ordinal);
        Assert.Contains("X-Team: \"search\"", yaml, StringComparison.Ordinal);
        Assert.Contains("LANG: \"C\"", yaml, StringComparison.Ordinal);
        Assert.Contains("bucket: \"b\"", yaml, StringComparison.Ordinal);
        Assert.Contains("path: \"/tmp/newcomer60/out/audit.jsonl\"", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Effective_yaml_without_secrets_loads_back_to_the_same_configuration()
    {
        var original = ConfigLoader.LoadFromYaml(
            ConfigBindingTests.FullYaml
                .Replace("Password=pw;", "", StringComparison.Ordinal)
                .Replace("u:p@", "", StringComparison.Ordinal)
                .Replace(":pw@", "", StringComparison.Ordinal)
                .Replace("Authorization: \"Bearer abc\", ", "", StringComparison.Ordinal)
                .Replace("secret_access_key: shh", "region: x", StringComparison.Ordinal)
                .Replace("access_key_id", "access_id", StringComparison.Ordinal)
                // Everything under an "auth" section is a secret by name now (auth.access_id would print masked).
                .Replace("auth: { access_id", "client: { access_id", StringComparison.Ordinal)
                .Replace("auth_token: \"  s3cret  \"", "auth_token: \"\"", StringComparison.Ordinal)
                .Replace("search-requests", "price-$${AMOUNT}", StringComparison.Ordinal),
            Env());

        var yaml = SecretMasker.ToMaskedYaml(original);
        var reloaded = ConfigLoader.LoadFromYaml(yaml, Env());

        Assert.DoesNotContain(SecretMasker.Masked, yaml, StringComparison.Ordinal);
        Assert.Equal(yaml, SecretMasker.ToMaskedYaml(reloaded));
        Assert.Equal("price-${AMOUNT}", reloaded.Kafka.SourceTopic);
        Assert.Equal(original.Sinks.Custom["s3"]["archive"].Settings, reloaded.Sinks.Custom["s3"]["archive"].Settings);
        Assert.Null(reloaded.Cache.MaxMemoryEntries);
    }
}
