using Drakkar.IntegrationTests.Support;

namespace Drakkar.IntegrationTests.Smoke;

/// <summary>The sample binary as an operator runs it: on the embedded broker, ready, then SIGTERM.</summary>
public sealed class SampleSmokeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("drakkar-smoke-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Both builds always run: without the AOT binary the AOT case fails and says how to get it, rather than vanishing.
    public static TheoryData<bool> Builds() => new() { false, true };

    /// <summary>The JIT or AOT sample on <paramref name="config"/>, once it has logged that it is ready.</summary>
    private async Task<SampleBinary> StartUntilReadyAsync(bool aot, string config)
    {
        var binary = SampleBinary.PathOf(aot);
        Assert.True(binary is not null && File.Exists(binary),
            $"no {(aot ? "Native AOT" : "JIT")} sample binary at '{binary}': build/test.sh publishes it and sets DRAKKAR_SAMPLE_AOT");
        var sample = SampleBinary.Start(binary, ["--config", config], _dir);
        try
        {
            await Eventually.True(() => sample.Stderr.Contains("is ready", StringComparison.Ordinal), TimeSpan.FromSeconds(30),
                () => $"the ready log line ({sample.Describe()}; stderr so far: {sample.Stderr})");
            return sample;
        }
        catch
        {
            sample.Dispose();
            throw;
        }
    }

    [Trait(NativeAotTrait.Name, NativeAotTrait.Sample)]
    [Theory]
    [MemberData(nameof(Builds))]
    public async Task On_the_embedded_broker_it_gets_ready_and_exits_0_promptly_after_SIGTERM(bool aot)
    {
        var config = Path.Combine(_dir, "smoke.yaml");
        var metricsPort = Fixtures.FreePort.Next();
        await File.WriteAllTextAsync(config, $"""
            kafka:
              brokers: embedded
              source_topic: smoke-requests
              consumer_group: smoke
            executor:
              binary_path: /bin/grep
            logging:
              format: json
            metrics:
              host: 127.0.0.1
              port: {metricsPort}
            sinks:
              filesystem:
                results:
                  base_path: {_dir}
            """);
        using var sample = await StartUntilReadyAsync(aot, config);
        Assert.Contains("\"worker_id\"", sample.Stderr);
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
        {
            // The endpoint is built into every worker binary, including the trimmed Native AOT one.
            await Eventually.True(() => http.GetAsync($"http://127.0.0.1:{metricsPort}/readyz").GetAwaiter().GetResult().IsSuccessStatusCode,
                TimeSpan.FromSeconds(10), "/readyz 200");
            Assert.Contains("drakkar_worker_info{", await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics"));
        }

        // Nothing is in flight, so the stop is quick; the bound is generous because other tests load the machine.
        sample.Signal(Posix.SigTerm);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(10)), $"still running 10s after SIGTERM; stderr:\n{sample.Stderr}");
        Assert.Equal(0, sample.ExitCode);
        Assert.Contains("Stopped", sample.Stderr);
    }

    /// <summary>
    /// Nothing a plain worker does before ready needs cryptography, so OpenSSL (libcrypto and libssl, 3.6 MB resident)
    /// is not mapped at ready; its sinks and TLS load it when they are used.
    /// </summary>
    [Trait(NativeAotTrait.Name, NativeAotTrait.Sample)]
    [Theory]
    [MemberData(nameof(Builds))]
    public async Task At_ready_a_plain_worker_has_not_loaded_OpenSSL(bool aot)
    {
        var config = Path.Combine(_dir, "start.yaml");
        await File.WriteAllTextAsync(config, $"""
            kafka:
              brokers: embedded
              source_topic: start-requests
              consumer_group: start
            executor:
              binary_path: /bin/true
            metrics:
              enabled: false
            sinks:
              filesystem:
                results:
                  base_path: {_dir}
            """);
        using var sample = await StartUntilReadyAsync(aot, config);

        var openSsl = File.ReadLines($"/proc/{sample.ProcessId}/maps")
            .Where(line => line.Contains("/libcrypto.so", StringComparison.Ordinal) || line.Contains("/libssl.so", StringComparison.Ordinal))
            .ToList();
        Assert.True(openSsl.Count == 0, "OpenSSL is mapped at ready:\n" + string.Join('\n', openSsl));
    }

    [Fact]
    public void Help_lists_the_commands_and_exits_0()
    {
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--help"], _dir);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, sample.ExitCode);
        Assert.Contains("check-config", sample.Stdout);
        Assert.Contains("--config", sample.Stdout);
        Assert.StartsWith("usage: drakkar-sample [command] [options]", sample.Stdout.TrimStart(), StringComparison.Ordinal);

        // Started as `dotnet drakkar-sample.dll`, the usage line still names the program, not "worker".
        var dll = SampleBinary.PathOf(aot: false) + ".dll";
        using var throughDotnet = SampleBinary.Start(Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "/usr/bin/dotnet",
            [dll, "--help"], _dir);
        Assert.True(throughDotnet.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.StartsWith("usage: drakkar-sample [command] [options]", throughDotnet.Stdout.TrimStart(), StringComparison.Ordinal);

        // `run --help` is run's own page (it used to print the program's page), and starts nothing.
        using var runHelp = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["run", "--help"], _dir);
        Assert.True(runHelp.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, runHelp.ExitCode);
        Assert.StartsWith("usage: drakkar-sample run [--config PATH]", runHelp.Stdout.TrimStart(), StringComparison.Ordinal);
        Assert.Contains("exit codes: 0 after a graceful stop", runHelp.Stdout);
        Assert.Equal("", runHelp.Stderr.Trim());
    }

    /// <summary>
    /// The README's first command: the sample with no configuration runs its demo on the embedded broker, writes a
    /// result per request and exits 0. Its stderr here is a pipe, so progress comes as whole lines (before: a bar
    /// redrawn with carriage returns, every 100 ms, into whatever file collected it).
    /// </summary>
    [Fact]
    public void With_no_configuration_the_demo_processes_every_request_and_writes_progress_as_lines_into_a_pipe()
    {
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, [], _dir, new Dictionary<string, string> { ["DK_CONFIG"] = "" });
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(90)), $"the demo still runs after 90 s; stderr:\n{sample.Stderr}");
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        Assert.Contains("Done: 300 requests", sample.Stderr);
        Assert.Equal(300, File.ReadLines(Path.Combine(_dir, "drakkar-sample-output", "search-results.jsonl")).Count());
        // The capture splits lines at carriage returns too: a redrawn bar shows here as a line per redraw (tens).
        var progress = sample.Stderr.Split('\n').Where(line => line.Contains("/300 requests", StringComparison.Ordinal)).ToList();
        Assert.InRange(progress.Count, 1, 4);
        Assert.Contains("300/300 requests", progress[^1]);
    }

    [Fact]
    public void The_sample_configuration_with_every_built_in_sink_is_valid_and_check_config_masks_its_secrets()
    {
        var config = Path.Combine(SampleBinary.RepoRoot(), "Drakkar.Sample", "drakkar.yaml");
        var secrets = new Dictionary<string, string>
        {
            ["PG_PASSWORD"] = "pg-secret-1", ["WEBHOOK_TOKEN"] = "hook-secret-3",
        };
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir, secrets);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        foreach (var kind in new[] { "kafka:", "postgres:", "redis:", "http:", "filesystem:" }) Assert.Contains(kind, sample.Stdout);
        foreach (var secret in secrets.Values) Assert.DoesNotContain(secret, sample.Stdout);
    }

    [Fact]
    public void A_misspelt_option_is_a_usage_error_that_suggests_the_option_and_points_to_the_commands_own_help()
    {
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["probe", "--partiton", "0", "--offset", "1"], _dir);

        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(2, sample.ExitCode);
        Assert.Contains("error: unknown option '--partiton' for 'probe'; did you mean '--partition'?", sample.Stderr, StringComparison.Ordinal);
        Assert.Contains(" probe --help' for usage.", sample.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("'0'", sample.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_refuses_a_configuration_that_run_would_refuse_with_the_same_reason()
    {
        // The handler declares sinks.filesystem.results; this configuration leaves it out, so `run` exits 2 before
        // anything starts. The probe said the payloads were unroutable and exited 0.
        var config = Path.Combine(_dir, "no-results-sink.yaml");
        File.WriteAllText(config, "kafka:\n  brokers: embedded\nexecutor:\n  binary_path: /bin/cat\n");
        var messages = Path.Combine(_dir, "one-message.json");
        File.WriteAllText(messages, """[{"partition": 0, "offset": 0, "value": "{}"}]""");
        const string Reason = "  sinks.filesystem.results: the handler declares this sink but it is not configured";

        foreach (var args in new[] { new[] { "probe", "--config", config, "--input", messages }, ["run", "--config", config] })
        {
            using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, args, _dir);
            Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
            Assert.True(sample.ExitCode == 2, $"{args[0]}: exit {sample.ExitCode}; {sample.Stderr}");
            Assert.Contains(Reason, sample.Stderr, StringComparison.Ordinal);
            Assert.Equal("", sample.Stdout);
        }
    }

    [Fact]
    public void Check_config_warns_about_an_executor_binary_this_machine_cannot_run_and_still_exits_0()
    {
        var config = Path.Combine(_dir, "binary.yaml");
        File.WriteAllText(config, "executor:\n  binary_path: /opt/not-installed-here/tool\n" + ResultsSink);

        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);

        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        Assert.Contains("warning: executor.binary_path '/opt/not-installed-here/tool' is not a file this worker can run (no such file)", sample.Stderr);
        Assert.Contains("binary_path: \"/opt/not-installed-here/tool\"", sample.Stdout);
    }

    [Fact]
    public void Check_config_masks_signature_and_auth_header_values()
    {
        var config = Path.Combine(_dir, "headers.yaml");
        File.WriteAllText(config, """
            sinks:
              http:
                hook:
                  url: "http://127.0.0.1:9/in"
                  headers: { X-Auth: "xauth-value-1", X-Signature: "sig-value-22", X-Hub-Signature-256: "sha256=hubsig333", X-Team: "search-team" }
              filesystem: { results: { base_path: /tmp } }
            """);
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        foreach (var secret in new[] { "xauth-value-1", "sig-value-22", "hubsig333" }) Assert.DoesNotContain(secret, sample.Stdout, StringComparison.Ordinal);
        Assert.Contains("X-Hub-Signature-256: \"***\"", sample.Stdout, StringComparison.Ordinal);
        Assert.Contains("X-Team: \"search-team\"", sample.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_config_takes_appsettings_json_then_DK_variables_then_command_line_settings_over_the_file()
    {
        var config = Path.Combine(_dir, "layers.yaml");
        File.WriteAllText(config, "kafka:\n  source_topic: file-topic\n  consumer_group: file-group\n  group_instance_id: file-instance\n" + ResultsSink);
        File.WriteAllText(Path.Combine(_dir, "appsettings.json"), """{ "kafka": { "source_topic": "json-topic", "consumer_group": "json-group" } }""");
        var environment = new Dictionary<string, string> { ["DK_KAFKA__CONSUMER_GROUP"] = "env-group", ["DK_KAFKA__GROUP_INSTANCE_ID"] = "env-instance" };
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!,
            ["check-config", "--config", config, "--kafka:group_instance_id", "cli-instance"], _dir, environment);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(sample.ExitCode == 0, sample.Stderr);
        Assert.Contains("source_topic: \"json-topic\"", sample.Stdout, StringComparison.Ordinal);
        Assert.Contains("consumer_group: \"env-group\"", sample.Stdout, StringComparison.Ordinal);
        Assert.Contains("group_instance_id: \"cli-instance\"", sample.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_config_warns_of_a_file_sink_directory_that_run_would_refuse()
    {
        var config = Path.Combine(_dir, "no-dir.yaml");
        var missing = Path.Combine(_dir, "not-created");
        File.WriteAllText(config, $"sinks:\n  filesystem:\n    results:\n      base_path: {missing}\n");

        using var check = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(check.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(check.ExitCode == 0, check.Stderr);
        Assert.Contains($"warning: sinks.filesystem.results.base_path '{missing}' does not exist or is not a directory", check.Stderr, StringComparison.Ordinal);
        Assert.Contains("would not start on this machine", check.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_config_warns_of_a_cache_directory_that_run_would_refuse()
    {
        var config = Path.Combine(_dir, "bad-cache.yaml");
        var file = Path.Combine(_dir, "a-file");
        File.WriteAllText(file, "");
        File.WriteAllText(config, ResultsSink + $"cache:\n  enabled: true\n  db_dir: {file}/cache\n");

        using var check = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(check.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(check.ExitCode == 0, check.Stderr);
        Assert.Contains($"warning: cache.db_dir '{file}/cache' cannot hold the worker's files: '{file}' is a file, not a directory; " +
            "`run` checks this at start and would not start on this machine", check.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_config_warns_of_a_port_in_use_that_run_could_not_listen_on()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var config = Path.Combine(_dir, "port-taken.yaml");
        File.WriteAllText(config, ResultsSink + $"metrics:\n  host: 127.0.0.1\n  port: {port}\n");

        using var check = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(check.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(check.ExitCode == 0, check.Stderr);
        Assert.Contains($"warning: the metrics endpoint cannot listen on 127.0.0.1:{port}", check.Stderr, StringComparison.Ordinal);
        Assert.Contains("set metrics.port to a free port, or metrics.enabled: false; `run` checks this at start and would not start on this machine",
            check.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// A configuration given through a pipe (<c>--config &lt;(…)</c>) was read once per load, and the second read was
    /// empty: the check then said the handler's sink was not configured.
    /// </summary>
    [Fact]
    public async Task Check_config_reads_a_configuration_given_through_a_pipe()
    {
        var fifo = Path.Combine(_dir, "config.fifo");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo])) await mkfifo.WaitForExitAsync();
        // The writer's open waits for the worker's: the text goes through the pipe once.
        var writing = Task.Run(() => File.WriteAllText(fifo, ResultsSink + "executor:\n  window_size: 7\n"));

        using var check = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", fifo], _dir);
        var exited = check.WaitForExit(TimeSpan.FromSeconds(20));
        // A worker that never opened the pipe would leave the writer blocked for good: open it here to let it go.
        if (!writing.IsCompleted) using (File.OpenRead(fifo)) { }
        Assert.True(exited, check.Stderr);
        await writing.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(check.ExitCode == 0, check.Stderr);
        Assert.Contains("window_size: 7", check.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Under the consumer protocol the broker owns the session and the heartbeat: the keys were accepted in silence.</summary>
    [Fact]
    public void Check_config_warns_of_session_settings_the_consumer_protocol_ignores()
    {
        var config = Path.Combine(_dir, "consumer-session.yaml");
        File.WriteAllText(config, ResultsSink + "kafka:\n  group_protocol: consumer\n  session_timeout_ms: 10000\n  heartbeat_interval_ms: 3000\n");

        using var check = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(check.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(check.ExitCode == 0, check.Stderr);
        Assert.Contains("warning: kafka.session_timeout_ms (10000) has no effect under group_protocol: consumer; the broker's " +
            "group.consumer.session.timeout.ms applies", check.Stderr, StringComparison.Ordinal);
        // The heartbeat is at its default: not said.
        Assert.DoesNotContain("heartbeat_interval_ms", check.Stderr, StringComparison.Ordinal);
    }

    /// <summary>The sink the sample's handler declares ([Sink(Filesystem, "results")]): a configuration it can run needs it.</summary>
    private const string ResultsSink = "sinks:\n  filesystem:\n    results:\n      base_path: /tmp\n";

    [Fact]
    public void Check_config_refuses_a_configuration_without_a_sink_the_handler_declares_as_run_would()
    {
        var config = Path.Combine(_dir, "no-results.yaml");
        File.WriteAllText(config, "executor:\n  binary_path: /opt/not-installed-here/tool\nsinks:\n  filesystem:\n    result:\n      base_path: /tmp\n");

        using var check = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(check.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(2, check.ExitCode);
        Assert.Contains($"Invalid configuration in {config} (1 problem):\n  sinks.filesystem.results: the handler declares this sink but it is not configured", check.Stderr, StringComparison.Ordinal);
        // What this machine lacks is said in the same run, not only once the sinks match.
        Assert.Contains("warning: executor.binary_path '/opt/not-installed-here/tool'", check.Stderr, StringComparison.Ordinal);
        Assert.Contains("The configuration has 'result' of this kind instead, which the handler does not declare: a misspelling?", check.Stderr,
            StringComparison.Ordinal);
        Assert.DoesNotContain("configuration is valid", check.Stdout, StringComparison.Ordinal);

        // Beside the declared one, the misspelt instance is valid configuration, but said.
        File.WriteAllText(config, ResultsSink + "    result:\n      base_path: /tmp\n");
        using var both = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(both.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.True(both.ExitCode == 0, both.Stderr);
        Assert.Contains("warning: sinks.filesystem.result is configured but the handler declares no such sink (it declares 'results'); " +
            "did you mean 'results'? It is connected at start all the same.", both.Stderr, StringComparison.Ordinal);
        File.WriteAllText(config, "sinks:\n  filesystem:\n    result:\n      base_path: /tmp\n");

        // run stops on the same check with the same words and exit code, before it starts anything.
        using var run = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        Assert.True(run.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("  sinks.filesystem.results: the handler declares this sink but it is not configured", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Sink_settings_the_sinks_cannot_use_fail_check_config_and_run_alike_with_exit_2()
    {
        // A Redis client option in the URL (what StackExchange.Redis's own connect error suggests), and a MongoDB sink
        // in a worker built without the MongoDB package: run refused both at start, after check-config passed them.
        var config = Path.Combine(_dir, "unusable-sinks.yaml");
        File.WriteAllText(config, ResultsSink + "  redis:\n    cache:\n      url: redis://127.0.0.1:6390/0?abortConnect=false\n" +
            "  mongo:\n    docs:\n      uri: mongodb://127.0.0.1:27099\n      database: d\n");

        using var check = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(check.WaitForExit(TimeSpan.FromSeconds(20)));
        using var run = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        Assert.True(run.WaitForExit(TimeSpan.FromSeconds(30)));

        foreach (var (command, process) in new[] { ("check-config", check), ("run", run) })
        {
            Assert.True(process.ExitCode == 2, $"{command} exited {process.ExitCode}: {process.Stderr}");
            Assert.Contains("sinks.redis.cache.url: unknown query parameter 'abortConnect'", process.Stderr, StringComparison.Ordinal);
            Assert.Contains("  sinks.mongo.docs: the mongo sink ships in its own package; reference Drakkar.Sinks.MongoDB", process.Stderr, StringComparison.Ordinal);
            Assert.Contains("(2 problems)", process.Stderr, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("configuration is valid", check.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_configuration_lists_every_problem_and_exits_2()
    {
        var config = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(config, """
            kafka:
              brokrs: localhost:9092
            executor:
              max_executors: 0
              window_size: -1
            """);
        using var sample = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["check-config", "--config", config], _dir);
        Assert.True(sample.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(2, sample.ExitCode);
        Assert.Contains("kafka.brokrs", sample.Stderr);
        Assert.Contains("brokers", sample.Stderr);
        Assert.Contains("executor.max_executors", sample.Stderr);
        Assert.Contains("executor.window_size", sample.Stderr);
        // The sink the handler declares and the file lacks is listed with them, not only once they are fixed.
        Assert.Contains("(4 problems)", sample.Stderr, StringComparison.Ordinal);
        Assert.Contains("  sinks.filesystem.results: the handler declares this sink but it is not configured", sample.Stderr, StringComparison.Ordinal);

        using var run = SampleBinary.Start(SampleBinary.PathOf(aot: false)!, ["--config", config], _dir);
        Assert.True(run.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("(4 problems)", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("  sinks.filesystem.results: the handler declares this sink but it is not configured", run.Stderr, StringComparison.Ordinal);
    }
}
