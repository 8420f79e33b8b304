using System.Collections.Concurrent;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Drakkar.Execution.Posix;

/// <summary>
/// A child started with <c>posix_spawnp</c> and <c>POSIX_SPAWN_SETSID</c>: it leads a new session and process
/// group whose id is its pid, so one <c>kill(-pid)</c> reaches every descendant that stayed in the group.
/// </summary>
/// <remarks>
/// The runner, not .NET's <see cref="System.Diagnostics.Process"/>, reaps this child. That ordering is what makes
/// group kills safe: the pid (= group id) stays reserved until <see cref="Reap"/>, so a kill sent before it can
/// never hit a recycled pid. Spawning directly also avoids the extra <c>exec</c> of a <c>setsid</c> wrapper and
/// reports a missing or non-executable binary as the spawn's own error number.
/// </remarks>
internal sealed class ChildProcess
{
    private const int E2BIG = 7;

    /// <summary>The process groups of children started and not yet reaped.</summary>
    private static readonly ConcurrentDictionary<int, byte> s_unreaped = new();

    /// <summary>Set by <see cref="KillAllGroups"/>: the worker is exiting, and no child starts after its sweep.</summary>
    private static volatile bool s_exiting;

    private ChildProcess(int pid, Stream? stdin, Stream stdout, Stream stderr)
    {
        Pid = pid;
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
    }

    public int Pid { get; }

    /// <summary>The write end of the child's stdin, or null when the child reads /dev/null.</summary>
    public Stream? Stdin { get; }

    public Stream Stdout { get; }

    public Stream Stderr { get; }

    /// <summary>Starts <paramref name="file"/> (searched on the worker's PATH when it has no slash).</summary>
    /// <exception cref="ProcessSpawnException">The binary could not be started.</exception>
    public static unsafe ChildProcess Start(
        string file, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> environment, bool pipeStdin)
    {
        foreach (var arg in args)
        {
            if (arg.Contains('\0'))
            {
                throw new ProcessSpawnException($"cannot start '{file}': an argument contains a NUL character");
            }
        }

        // Pipe ends: [0] read, [1] write. All are close-on-exec, so no other child spawned concurrently inherits
        // them; the child gets its own copies through dup2, which clears that flag on the copy.
        int* stdoutPipe = stackalloc int[2] { -1, -1 };
        int* stderrPipe = stackalloc int[2] { -1, -1 };
        int* stdinPipe = stackalloc int[2] { -1, -1 };
        byte* fileActions = stackalloc byte[LibC.FileActionsSize];
        byte* attributes = stackalloc byte[LibC.SpawnAttrSize];
        byte* signalMask = stackalloc byte[LibC.SigSetSize];
        byte* signalDefaults = stackalloc byte[LibC.SigSetSize];
        byte** argv = null;
        byte** envp = null;
        var fileActionsReady = false;
        var attributesReady = false;
        var started = false;
        try
        {
            CreatePipe(stdoutPipe);
            CreatePipe(stderrPipe);
            if (pipeStdin)
            {
                CreatePipe(stdinPipe);
            }

            Check(LibC.FileActionsInit(fileActions), file);
            fileActionsReady = true;
            if (pipeStdin)
            {
                Check(LibC.FileActionsAddDup2(fileActions, stdinPipe[0], 0), file);
            }
            else
            {
                // An empty stdin, never the worker's own: a child that reads stdin sees end-of-file at once.
                fixed (byte* devNull = "/dev/null"u8)
                {
                    Check(LibC.FileActionsAddOpen(fileActions, 0, devNull, LibC.O_RDONLY, 0), file);
                }
            }

            Check(LibC.FileActionsAddDup2(fileActions, stdoutPipe[1], 1), file);
            Check(LibC.FileActionsAddDup2(fileActions, stderrPipe[1], 2), file);

            Check(LibC.SpawnAttrInit(attributes), file);
            attributesReady = true;
            // The runtime ignores SIGPIPE and may block signals on the calling thread; a child must start with
            // default dispositions and an empty mask, as it would from a shell.
            LibC.SigEmptySet(signalMask);
            LibC.SigFillSet(signalDefaults);
            Check(LibC.SpawnAttrSetSigMask(attributes, signalMask), file);
            Check(LibC.SpawnAttrSetSigDefault(attributes, signalDefaults), file);
            Check(LibC.SpawnAttrSetFlags(
                attributes,
                LibC.POSIX_SPAWN_SETSID | LibC.POSIX_SPAWN_SETSIGMASK | LibC.POSIX_SPAWN_SETSIGDEF), file);

            argv = NativeStrings.Arguments(file, args);
            envp = NativeStrings.Environment(environment);
            var pid = 0;
            int error;
            bool exiting;
            using (SpawnGate.Spawning())
            {
                // Registered before the gate is let go: KillAllGroups sweeps under the exclusive side, so a child is
                // either in its sweep or never started.
                exiting = s_exiting;
                error = exiting ? 0 : LibC.PosixSpawnP(&pid, argv[0], fileActions, attributes, argv, envp);
                if (!exiting && error == 0) s_unreaped[pid] = 0;
            }
            // The worker is exiting without draining (a second signal): start nothing, and settle nothing either (a
            // failed start would run the task's error path, up to a dead letter and a commit); the exit ends this thread.
            if (exiting) Thread.Sleep(Timeout.Infinite);
            if (error != 0)
            {
                throw new ProcessSpawnException(
                    $"cannot start '{file}': {Marshal.GetPInvokeErrorMessage(error)} (errno {error}); " + (error == E2BIG
                        // The task's own arguments and environment are over the kernel's limit (a single argument over
                        // 128 KiB, or all of them over about a quarter of the stack limit): the binary is not at fault.
                        ? "the task's arguments and environment are too large for the kernel (one argument at most 128 KiB); pass large input through Stdin"
                        : "check that the path exists and is an executable file"));
            }

            started = true;
            return new ChildProcess(
                pid,
                pipeStdin ? OpenPipe(stdinPipe[1], PipeDirection.Out) : null,
                OpenPipe(stdoutPipe[0], PipeDirection.In),
                OpenPipe(stderrPipe[0], PipeDirection.In));
        }
        finally
        {
            if (fileActionsReady)
            {
                LibC.FileActionsDestroy(fileActions);
            }

            if (attributesReady)
            {
                LibC.SpawnAttrDestroy(attributes);
            }

            NativeStrings.Free(argv);
            NativeStrings.Free(envp);
            // The child's ends belong to the child now; keeping them open here would hide its end-of-file.
            CloseFd(stdoutPipe[1]);
            CloseFd(stderrPipe[1]);
            CloseFd(stdinPipe[0]);
            if (!started)
            {
                CloseFd(stdoutPipe[0]);
                CloseFd(stderrPipe[0]);
                CloseFd(stdinPipe[1]);
            }
        }
    }

    /// <summary>
    /// SIGKILLs the process group of every child not yet reaped, and keeps any other from starting: for an exit that
    /// cannot wait for the pool to stop them (a second signal), so no task process outlives the worker. A task the drain
    /// was starting meanwhile used to start after the sweep and outlive the worker.
    /// </summary>
    public static void KillAllGroups()
    {
        // Exclusive: waits for the starts in progress (each registers its child before letting go), and none starts after.
        using (SpawnGate.Exclusive())
        {
            s_exiting = true;
            foreach (var pid in s_unreaped.Keys) LibC.Kill(-pid, LibC.SIGKILL);
        }
    }

    /// <summary>SIGKILLs the child's whole process group. Only valid until <see cref="Reap"/> has run.</summary>
    public void KillGroup()
    {
        // ESRCH: every member is already gone, which is the goal.
        LibC.Kill(-Pid, LibC.SIGKILL);
    }

    /// <summary>
    /// Completes when the child has exited, without reaping it (so its pid stays reserved for a group kill).
    /// </summary>
    public Task WaitForExitAsync()
    {
        // A blocking waitid on a dedicated thread: at most max_executors of them exist at once, and it keeps
        // clear of the runtime's SIGCHLD handling, which only reaps children that Process started.
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiter = new Thread(
            static state =>
            {
                var (pid, done) = ((int, TaskCompletionSource))state!;
                WaitExitedNoReap(pid);
                done.SetResult();
            },
            maxStackSize: 128 * 1024)
        {
            IsBackground = true,
            Name = "drakkar-child-wait",
        };
        waiter.UnsafeStart((Pid, exited));
        return exited.Task;
    }

    /// <summary>
    /// Reaps the exited child and returns its exit code: the code it exited with, or 128 + the signal that
    /// killed it (the shell's convention, and <see cref="System.Diagnostics.Process.ExitCode"/>'s); null if
    /// something else already reaped it (a worker started with SIGCHLD ignored).
    /// </summary>
    public unsafe int? Reap()
    {
        int status;
        while (LibC.WaitPid(Pid, &status, 0) < 0)
        {
            if (Marshal.GetLastPInvokeError() != LibC.EINTR)
            {
                s_unreaped.TryRemove(Pid, out _);
                return null;
            }
        }
        s_unreaped.TryRemove(Pid, out _);

        var signal = status & 0x7f;
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal;
    }

    private static unsafe void WaitExitedNoReap(int pid)
    {
        byte* info = stackalloc byte[LibC.SigInfoSize];
        while (LibC.WaitId(LibC.P_PID, pid, info, LibC.WEXITED | LibC.WNOWAIT) < 0)
        {
            if (Marshal.GetLastPInvokeError() != LibC.EINTR)
            {
                return;
            }
        }
    }

    private static unsafe void CreatePipe(int* fds)
    {
        if (LibC.Pipe2(fds, LibC.O_CLOEXEC) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            throw new ProcessSpawnException(
                $"cannot create a pipe for a child process: {Marshal.GetPInvokeErrorMessage(error)} (errno {error})");
        }
    }

    private static void Check(int error, string file)
    {
        if (error != 0)
        {
            throw new ProcessSpawnException(
                $"cannot prepare to start '{file}': {Marshal.GetPInvokeErrorMessage(error)} (errno {error})");
        }
    }

    private static void CloseFd(int fd)
    {
        if (fd >= 0)
        {
            LibC.Close(fd);
        }
    }

    // The same stream type Process uses for redirected pipes: on Unix its async I/O goes through epoll, so a
    // waiting read holds no thread.
    private static AnonymousPipeClientStream OpenPipe(int fd, PipeDirection direction) =>
        new(direction, new SafePipeHandle(fd, ownsHandle: true));

    /// <summary>NULL-terminated arrays of NUL-terminated UTF-8 strings in one native block each.</summary>
    private static class NativeStrings
    {
        public static unsafe byte** Arguments(string file, IReadOnlyList<string> args)
        {
            var bytes = Encoding.UTF8.GetByteCount(file) + 1;
            foreach (var arg in args)
            {
                bytes += Encoding.UTF8.GetByteCount(arg) + 1;
            }

            var pointers = Allocate(args.Count + 1, bytes, out var cursor);
            var index = 0;
            pointers[index++] = cursor;
            cursor = Write(cursor, file);
            foreach (var arg in args)
            {
                pointers[index++] = cursor;
                cursor = Write(cursor, arg);
            }

            pointers[index] = null;
            return pointers;
        }

        public static unsafe byte** Environment(IReadOnlyDictionary<string, string> environment)
        {
            var bytes = 0;
            foreach (var (name, value) in environment)
            {
                bytes += Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(value) + 2;
            }

            var pointers = Allocate(environment.Count, bytes, out var cursor);
            var index = 0;
            foreach (var (name, value) in environment)
            {
                pointers[index++] = cursor;
                cursor += Encoding.UTF8.GetBytes(name, new Span<byte>(cursor, int.MaxValue));
                *cursor++ = (byte)'=';
                cursor = Write(cursor, value);
            }

            pointers[index] = null;
            return pointers;
        }

        public static unsafe void Free(byte** block) => NativeMemory.Free(block);

        private static unsafe byte** Allocate(int count, int stringBytes, out byte* strings)
        {
            var pointerBytes = (nuint)(count + 1) * (nuint)sizeof(byte*);
            var block = (byte*)NativeMemory.Alloc(pointerBytes + (nuint)stringBytes);
            strings = block + pointerBytes;
            return (byte**)block;
        }

        private static unsafe byte* Write(byte* cursor, string text)
        {
            cursor += Encoding.UTF8.GetBytes(text, new Span<byte>(cursor, int.MaxValue));
            *cursor = 0;
            return cursor + 1;
        }
    }
}

/// <summary>A child process could not be started; the message names the binary and the reason.</summary>
internal sealed class ProcessSpawnException(string message, int? pid = null, string stderr = "") : Exception(message)
{
    /// <summary>The process id, when a process was started (a persistent child that failed before its ready line).</summary>
    public int? Pid { get; } = pid;

    /// <summary>What is known of the process's stderr (its last line), or empty.</summary>
    public string Stderr { get; } = stderr;
}
