using System.Diagnostics;
using System.Text.Json;
using Drakkar.IntegrationTests.Fixtures;
using Drakkar.IntegrationTests.Support;
using Drakkar.Sinks;
using Drakkar.Sinks.Filesystem;

namespace Drakkar.IntegrationTests.Sinks;

/// <summary>
/// The filesystem sink against a hostile tree: symlinks swapped in or planted while it writes, hard links and FIFOs
/// under base_path, and several processes appending to one file. The tree is the one the other part of this class
/// builds (base, base-evil outside it).
/// </summary>
public sealed partial class FileSinkTests
{
    private static readonly TimeSpan RaceFor = TimeSpan.FromSeconds(2);

    /// <summary>A connected sink; <paramref name="componentWalk"/> forces the O_NOFOLLOW walk used where openat2 is missing.</summary>
    private async Task<FileSink> Connected(bool componentWalk)
    {
        var sink = new FileSink("files", new FileSinkConfig { BasePath = _base }, componentWalk);
        await sink.ConnectAsync(default);
        return sink;
    }

    private static SinkBatch Lines(string path, int count = 1) =>
        new("t", 0, [.. Enumerable.Range(0, count).Select(i => (SinkPayload)FilePayload.Of(path, Reading.Sample(i)))]);

    private long OutsideBytes() => Directory.EnumerateFiles(_outside).Sum(f => new FileInfo(f).Length);

    /// <summary>Delivers to <paramref name="path"/> again and again while <paramref name="flip"/> rearranges the tree; returns the errors seen.</summary>
    private async Task<List<string>> DeliverWhileFlipping(string path, bool componentWalk, Action flip)
    {
        var sink = await Connected(componentWalk);
        using var stop = new CancellationTokenSource();
        var flipper = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { flip(); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }, TaskCreationOptions.LongRunning);
        var errors = new List<string>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < RaceFor && OutsideBytes() == 0)
        {
            try
            {
                await sink.DeliverAsync(Lines(path), default);
            }
            catch (Exception e) when (e is SinkDeliveryException or IOException)
            {
                errors.Add(e.Message);
            }
        }
        await stop.CancelAsync();
        await flipper;
        return errors;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_directory_swapped_for_a_symlink_while_writing_never_leads_outside(bool componentWalk)
    {
        var swap = Path.Combine(_base, "swap");
        var link = Path.Combine(_base, "swap-link");
        Directory.CreateDirectory(swap);
        File.CreateSymbolicLink(link, _outside);
        // "swap" is a real directory, then (atomically) a symlink to the outside directory, then a directory again…
        var errors = await DeliverWhileFlipping("swap/x.jsonl", componentWalk, () => Posix.Exchange(swap, link));

        Assert.True(OutsideBytes() == 0, $"{OutsideBytes()} bytes were written outside base_path through the swapped-in symlink");
        Assert.Contains(errors, e => e.Contains("swap/x.jsonl", StringComparison.Ordinal) && e.Contains("symlink", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_symlink_planted_at_a_not_yet_created_name_never_leads_outside(bool componentWalk)
    {
        var planted = Path.Combine(_base, "logs", "planted.jsonl");
        var target = Path.Combine(_outside, "stolen.jsonl");
        var errors = await DeliverWhileFlipping("logs/planted.jsonl", componentWalk, () =>
        {
            File.Delete(planted);
            File.CreateSymbolicLink(planted, target);
            File.Delete(planted);
        });

        Assert.True(OutsideBytes() == 0, $"{OutsideBytes()} bytes were written outside base_path through the planted symlink");
        Assert.Contains(errors, e => e.Contains("logs/planted.jsonl", StringComparison.Ordinal) && e.Contains("symlink", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_hard_link_inside_base_to_an_outside_file_is_refused(bool componentWalk)
    {
        var target = Path.Combine(_outside, "victim.jsonl");
        await File.WriteAllTextAsync(target, "original\n");
        Posix.Run("/bin/ln", target, Path.Combine(_base, "logs", "linked.jsonl"));
        var sink = await Connected(componentWalk);

        var error = await Assert.ThrowsAsync<SinkDeliveryException>(() => sink.DeliverAsync(Lines("logs/linked.jsonl"), default).AsTask());

        Assert.Contains("logs/linked.jsonl", error.Message, StringComparison.Ordinal);
        Assert.Contains("hard link", error.Message, StringComparison.Ordinal);
        Assert.Equal("original\n", await File.ReadAllTextAsync(target));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_fifo_is_refused_at_once_instead_of_blocking_the_sink(bool componentWalk)
    {
        var fifo = Path.Combine(_base, "logs", "pipe.jsonl");
        Posix.Run("/usr/bin/mkfifo", fifo);
        var sink = await Connected(componentWalk);
        try
        {
            var delivery = Task.Run(() => sink.DeliverAsync(Lines("logs/pipe.jsonl"), default).AsTask());
            var finished = await Task.WhenAny(delivery, Task.Delay(TimeSpan.FromSeconds(5)));

            Assert.True(finished == delivery, "delivering to a FIFO blocked for 5 s");
            var error = await Assert.ThrowsAsync<SinkDeliveryException>(() => delivery);
            Assert.Contains("logs/pipe.jsonl", error.Message, StringComparison.Ordinal);
            Assert.Contains("not a regular file", error.Message, StringComparison.Ordinal);
            // A later write to an ordinary file of the same sink is not stuck behind it.
            await sink.DeliverAsync(Lines("logs/after.jsonl"), default).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        }
        finally
        {
            // Release an open(2) that is still blocked on the FIFO (before the fix), so the test host can exit.
            using var reader = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(
                Posix.OpenNonBlocking(fifo), ownsHandle: true), FileAccess.Read);
        }
    }

    [Fact]
    public async Task Three_processes_appending_two_thousand_lines_each_to_one_file_leave_six_thousand_whole_lines()
    {
        var writer = WriterPath();
        var go = Path.Combine(_root, "go");
        var processes = Enumerable.Range(0, 3).Select(w => ChildProcesses.Start(new ProcessStartInfo(writer)
        {
            ArgumentList = { _base, "logs/shared.jsonl", $"w{w}", "2000", "10", go },
            RedirectStandardError = true,
            UseShellExecute = false,
        })!).ToList();
        try
        {
            await Task.Delay(1500); // every writer has connected and waits for the go file
            await File.WriteAllTextAsync(go, "");
            foreach (var process in processes)
            {
                Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "a writer did not finish within 60 s");
                Assert.True(process.ExitCode == 0, await process.StandardError.ReadToEndAsync());
            }
        }
        finally
        {
            foreach (var process in processes)
            {
                if (!process.HasExited) process.Kill();
                process.Dispose();
            }
        }

        var lines = await File.ReadAllLinesAsync(Path.Combine(_base, "logs", "shared.jsonl"));
        var seen = new HashSet<(string, int)>();
        var torn = 0;
        foreach (var line in lines)
        {
            try
            {
                using var json = JsonDocument.Parse(line);
                seen.Add((json.RootElement.GetProperty("writer").GetString()!, json.RootElement.GetProperty("seq").GetInt32()));
            }
            catch (JsonException)
            {
                torn++;
            }
        }
        Assert.True(lines.Length == 6000 && torn == 0 && seen.Count == 6000,
            $"{lines.Length} lines, {torn} torn, {seen.Count} distinct of the 6000 written");
    }

    private static string WriterPath()
    {
#if RELEASE_BUILD
        const string configuration = "Release";
#else
        const string configuration = "Debug";
#endif
        return Path.Combine(SampleBinary.RepoRoot(), "tests", "Drakkar.FileSinkWriter", "bin", configuration, "net10.0", "Drakkar.FileSinkWriter");
    }
}
