using Drakkar.Diagnostics.Recorder;
using Drakkar.Diagnostics.Ui;
using Drakkar.Runtime.Tests.Configuration;

namespace Drakkar.Runtime.Tests.Diagnostics;

/// <summary>
/// What the debug UI and the flight recorder let out: no credential on the page or in the recorder's rows, no answer to
/// a page whose domain was re-pointed at the UI, no configured link that runs script, a warning for a UI exposed
/// without a token, and recorder files only their owner can read, created where nothing was planted.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DebugUiExposureTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-debug-exposure-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Exposed_environment_variables_show_no_secret_value_and_no_url_password()
    {
        var names = new[] { "DRAKKAR_T_DB_PASSWORD", "DRAKKAR_T_DATABASE_URL", "DRAKKAR_T_BROKER", "DRAKKAR_T_REGION" };
        Environment.SetEnvironmentVariable(names[0], "hunter2");
        Environment.SetEnvironmentVariable(names[1], "postgres://app:pg-secret@db:5432/app");
        Environment.SetEnvironmentVariable(names[2], "https://svc:broker-secret@broker.example/?api_key=k3y&region=eu");
        Environment.SetEnvironmentVariable(names[3], "eu-west-1");
        try
        {
            var debug = new DebugConfig { ExposeEnvVars = [.. names] };

            var env = DebugJson.ExposedEnvironment(debug);
            var json = DebugJson.EnvironmentJson(debug);

            Assert.Equal("***", env["DRAKKAR_T_DB_PASSWORD"]);
            Assert.Equal("***", env["DRAKKAR_T_DATABASE_URL"]);
            Assert.Equal("https://svc:***@broker.example/?api_key=***&region=eu", env["DRAKKAR_T_BROKER"]);
            Assert.Equal("eu-west-1", env["DRAKKAR_T_REGION"]);
            foreach (var secret in new[] { "hunter2", "pg-secret", "broker-secret", "k3y" }) Assert.DoesNotContain(secret, json);
            Assert.Contains("eu-west-1", json);
        }
        finally
        {
            foreach (var name in names) Environment.SetEnvironmentVariable(name, null);
        }
    }

    [Fact]
    public void Every_link_on_the_page_has_its_credentials_masked_and_keeps_its_host()
    {
        var config = ConfigLoader.LoadFromYaml("""
            kafka:
              ui_url: "https://ops:kafka-ui-secret@kafka-ui.example"
              ui_cluster_name: main
            sinks:
              http:
                hook: { url: "https://hook.example/in", ui_url: "https://hook.example/admin?token=sink-secret&tab=1" }
              custom:
                s3:
                  archive: { bucket: b, ui_url: "https://s3:plugin-secret@s3.example/b" }
            debug:
              prometheus_url: "https://viewer:prom-secret@prometheus.example"
              custom_links:
                - { name: Grafana, url: "https://grafana.example/d/abc?var-worker={worker_id}&auth_token=grafana-secret" }
                - { name: Logs, url: "https://logs-token-secret@logs.example/{worker_id}" }
            """, ConfigTestSupport.Env());

        var links = new List<string?>
        {
            DebugLinks.KafkaUi(config)!.Url,
            DebugLinks.SinkUrls(config)["http/hook"],
            DebugLinks.SinkUrls(config)["s3/archive"],
        };
        links.AddRange(DebugLinks.Prometheus(config, "w-1").Select(l => l.Url));
        links.AddRange(DebugLinks.Custom(config, "w-1").Select(l => l.Url));

        foreach (var secret in new[] { "kafka-ui-secret", "sink-secret", "plugin-secret", "prom-secret", "grafana-secret", "logs-token-secret" })
            Assert.DoesNotContain(links, url => url!.Contains(secret, StringComparison.Ordinal));
        Assert.Equal("https://ops:***@kafka-ui.example/ui/clusters/main/all-topics/input-events", links[0]);
        Assert.Equal("https://hook.example/admin?token=***&tab=1", links[1]);
        Assert.Equal("https://s3:***@s3.example/b", links[2]);
        Assert.StartsWith("https://viewer:***@prometheus.example/graph?g0.expr=", links[3]);
        Assert.Contains("https://grafana.example/d/abc?var-worker=w-1&auth_token=***", links);
        Assert.Contains("https://***@logs.example/w-1", links);
    }

    [Theory]
    [InlineData("custom_links: [{ name: x, url: \"javascript:alert(document.cookie)\" }]", "debug.custom_links[0].url")]
    [InlineData("custom_links: [{ name: x, url: \"file:///etc/passwd\" }]", "debug.custom_links[0].url")]
    [InlineData("prometheus_url: \"javascript:alert(1)\"", "debug.prometheus_url")]
    [InlineData("debug_url: \"data:text/html,hi\"", "debug.debug_url")]
    public void A_link_that_is_not_http_or_https_is_a_configuration_error_naming_its_key(string yaml, string key)
    {
        var error = ConfigTestSupport.LoadFails("debug:\n  " + yaml + "\n");

        var problem = Assert.Single(error.Problems);
        Assert.Equal(key, problem.Path);
        Assert.Contains("http:// or https://", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_custom_link_with_a_mistyped_or_missing_key_or_an_unknown_placeholder_is_an_error_at_its_line()
    {
        var error = ConfigTestSupport.LoadFails("""
            debug:
              custom_links:
                - name: Good
                  url: "https://ok.example/{worker_id}"
                - nme: Typo
                  url: "https://typo.example"
                - name: NoUrl
                - name: Extra
                  url: "https://extra.example"
                  target: _blank
                - name: Placeholder
                  url: "https://grafana.example/{nope}"
            """);

        Assert.Equal(new Dictionary<string, string>
        {
            ["debug.custom_links[1].nme"] = "unknown key; did you mean 'name'?",
            ["debug.custom_links[1].name"] = "is required (each entry has name and url)",
            ["debug.custom_links[2].url"] = "is required (each entry has name and url)",
            ["debug.custom_links[3].target"] = "unknown key (known keys: name, url)",
            ["debug.custom_links[4].url"] = "has an unknown placeholder {nope} (known: {worker_id}, {cluster_name}, {metrics_port}, {debug_port})",
        }, error.Problems.ToDictionary(p => p.Path, p => p.Message));
        Assert.Contains("debug.custom_links[1].nme: unknown key; did you mean 'name'? [line 5]", error.Message, StringComparison.Ordinal);
        Assert.Contains("debug.custom_links[3].target: unknown key (known keys: name, url) [line 10]", error.Message, StringComparison.Ordinal);
        Assert.Contains("[line 12]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Allowed_origins_and_exposed_variable_names_are_checked_item_by_item()
    {
        var error = ConfigTestSupport.LoadFails("""
            debug:
              allowed_ws_origins: ["*", "https://ops.example.com", "https://ops.example.com/path", "not a url"]
              expose_env_vars: ["REGION", "", "A B"]
            """);

        Assert.Equal(["debug.allowed_ws_origins[2]", "debug.allowed_ws_origins[3]", "debug.expose_env_vars[1]", "debug.expose_env_vars[2]"],
            error.Problems.Select(p => p.Path).Order().ToArray());
        Assert.Contains("must be an origin such as https://ops.example.com", error.Problems[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sink_or_kafka_ui_url_that_is_not_http_or_https_is_refused()
    {
        var error = ConfigTestSupport.LoadFails("""
            kafka: { ui_url: "javascript:alert(1)" }
            sinks:
              filesystem:
                out: { base_path: /tmp, ui_url: "vbscript:msgbox" }
            """);

        Assert.Equal(["kafka.ui_url", "sinks.filesystem.out.ui_url"], error.Problems.Select(p => p.Path).Order().ToArray());
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("127.0.0.1:8080", true)]
    [InlineData("[::1]:8080", true)]
    [InlineData("10.1.2.3", true)]
    [InlineData("localhost:8080", true)]
    [InlineData("worker.localhost", true)]
    [InlineData("debug.ops.example:8443", true)] // the host of debug.debug_url
    [InlineData("dashboard.example", true)] // the host of an allowed_ws_origins entry
    [InlineData("attacker.example:8080", false)]
    [InlineData("localhost.attacker.example", false)]
    [InlineData("127.0.0.1.nip.io:8080", false)]
    public void Without_a_token_only_requests_addressed_to_the_uis_own_names_are_answered(string? host, bool answered)
    {
        var config = new DebugConfig { DebugUrl = "https://debug.ops.example:8443/w1", AllowedWsOrigins = ["https://dashboard.example"] };

        Assert.Equal(answered, DebugServer.HostAllowed(config, host));
        Assert.True(DebugServer.HostAllowed(config, Environment.MachineName));
        // With a token, the token is the check: any host may ask.
        Assert.True(DebugServer.HostAllowed(new DebugConfig { AuthToken = "t" }, host));
    }

    [Theory]
    [InlineData("0.0.0.0", "", true)]
    [InlineData("10.0.0.5", "", true)]
    [InlineData("::", "", true)]
    [InlineData("0.0.0.0", "a-token", false)]
    [InlineData("127.0.0.1", "", false)]
    [InlineData("::1", "", false)]
    [InlineData("localhost", "", false)]
    public void A_ui_bound_beyond_loopback_without_a_token_gets_a_warning_naming_the_keys(string host, string token, bool warned)
    {
        var warning = DebugServer.ExposureWarning(new DebugConfig { Enabled = true, Host = host, Port = 9000, AuthToken = token });

        Assert.Equal(warned, warning is not null);
        if (warning is not null)
        {
            Assert.Contains($"{host}:9000 without debug.auth_token", warning, StringComparison.Ordinal);
            Assert.Contains("debug.host: 127.0.0.1", warning, StringComparison.Ordinal);
        }
        Assert.Null(DebugServer.ExposureWarning(new DebugConfig { Enabled = false, Host = host }));
    }

    [Fact]
    public void Recorder_files_and_their_write_ahead_log_are_readable_by_their_owner_only()
    {
        using var store = new EventStore(_dir, "w1");
        store.Open(DateTimeOffset.UtcNow);
        var path = store.Path!;
        // Its companions are made by the recorder before SQLite opens the file, never by SQLite.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path + "-shm"));
        store.WriteConfig(DateTimeOffset.UtcNow, "w1", "c", "", "{}", "debug: {}");

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.True(File.Exists(path + "-wal"), "the database writes ahead");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path + "-wal"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("-wal")]
    public void A_link_planted_at_the_recorder_files_name_is_not_written_through(string suffix)
    {
        var now = new DateTimeOffset(2026, 12, 4, 10, 0, 0, TimeSpan.Zero);
        var victim = Path.Combine(_dir, "victim.txt");
        File.WriteAllText(victim, "precious");
        var planted = Path.Combine(_dir, "drakkar-recorder-w1-20261204T100000Z.db" + suffix);
        File.CreateSymbolicLink(planted, victim);

        using (var store = new EventStore(_dir, "w1"))
        {
            store.Open(now);
            store.WriteConfig(now, "w1", "c", "", "{}", "debug: {}");
            Assert.Equal(Path.Combine(_dir, "drakkar-recorder-w1-20261204T100000Z-1.db"), store.Path);
        }

        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Equal(victim, new FileInfo(planted).LinkTarget);
    }

    [Fact]
    public void A_worker_restarted_within_the_same_second_starts_a_second_file_instead_of_reopening_the_first()
    {
        var now = new DateTimeOffset(2026, 12, 4, 10, 0, 0, TimeSpan.Zero);
        string first;
        using (var store = new EventStore(_dir, "w1"))
        {
            store.Open(now);
            first = store.Path!;
        }

        using var again = new EventStore(_dir, "w1");
        again.Open(now);

        Assert.NotEqual(first, again.Path);
        Assert.EndsWith("-1.db", again.Path, StringComparison.Ordinal);
    }

    /// <summary>
    /// A worker without <c>WORKER_ID</c> gets a new id at each start, so retention that only knew this run's id never
    /// deleted the files of earlier runs: a worker restarted daily kept every day's file. Now retention takes every
    /// recorder file of this user last written before the limit, whatever its id; nothing else.
    /// </summary>
    [Fact]
    public void Retention_deletes_this_users_old_recorder_files_of_every_worker_id_and_nothing_else()
    {
        var now = DateTimeOffset.UtcNow;
        string Old(string name, string content = "")
        {
            var path = Path.Combine(_dir, name);
            File.WriteAllText(path, content);
            File.SetLastWriteTimeUtc(path, now.AddHours(-30).UtcDateTime);
            return path;
        }
        // A recorder database as an earlier run left it (the sweep reads that a file is one before deleting it).
        string OldRecorder(string name)
        {
            var path = Path.Combine(_dir, name);
            using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
            {
                db.Open();
                using var create = db.CreateCommand();
                create.CommandText = "CREATE TABLE event_packs (first_seq INTEGER)";
                create.ExecuteNonQuery();
            }
            File.SetLastWriteTimeUtc(path, now.AddHours(-30).UtcDateTime);
            return path;
        }
        var ownEarlier = OldRecorder("drakkar-recorder-w1-20261201T100000Z.db");
        var earlierRun = OldRecorder("drakkar-recorder-drakkar-1a2b3c4d-20261201T100000Z.db");
        // Another program's file that happens to match the name pattern.
        var imposter = Old("drakkar-recorder-imposter-20261201T100000Z.db", "not a recorder");
        Old(Path.GetFileName(earlierRun) + "-wal");
        Old(Path.GetFileName(earlierRun) + "-shm");
        // Its database file is old, but its write-ahead log was written just now: a live worker's file.
        var stillWritten = Old("drakkar-recorder-drakkar-5e6f7a8b-20261201T100000Z.db");
        File.WriteAllText(stillWritten + "-wal", "recent");
        var recent = Path.Combine(_dir, "drakkar-recorder-drakkar-9c9c9c9c-20261204T100000Z.db");
        File.WriteAllText(recent, "");
        var victim = Old("victim.txt", "precious");
        var link = Path.Combine(_dir, "drakkar-recorder-drakkar-00000000-20261201T100000Z.db");
        File.CreateSymbolicLink(link, victim);
        var unrelated = Old("notes-20261201.db");
        // Another user's file needs chown, so root (as CI runs): otherwise it would be this user's, and deleted.
        var asRoot = Environment.UserName == "root";
        var foreign = asRoot ? Old("drakkar-recorder-drakkar-f0f0f0f0-20261201T100000Z.db") : null;
        if (foreign is not null) ChangeOwner(foreign, 65534);

        using var store = new EventStore(_dir, "w1");
        store.Open(now);
        var deleted = store.DeleteFilesOlderThan(now.AddHours(-24));

        Assert.Equal(2, deleted);
        Assert.False(File.Exists(ownEarlier));
        Assert.Empty(Directory.GetFiles(_dir, Path.GetFileName(earlierRun) + "*"));
        Assert.True(File.Exists(stillWritten));
        Assert.True(File.Exists(recent));
        Assert.Equal(victim, new FileInfo(link).LinkTarget);
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.True(File.Exists(unrelated));
        Assert.Equal("not a recorder", File.ReadAllText(imposter));
        if (foreign is not null) Assert.True(File.Exists(foreign), "another user's file is left alone");
        Assert.True(File.Exists(store.Path));
    }

    private static void ChangeOwner(string path, int uid)
    {
        using var chown = System.Diagnostics.Process.Start("chown", [uid.ToString(System.Globalization.CultureInfo.InvariantCulture), path])!;
        chown.WaitForExit();
        Assert.Equal(0, chown.ExitCode);
    }
}
