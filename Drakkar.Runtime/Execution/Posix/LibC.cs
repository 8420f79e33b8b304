using System.Runtime.InteropServices;

namespace Drakkar.Execution.Posix;

/// <summary>
/// The few libc calls the process runner needs that .NET does not expose: spawning into a new session (so the
/// child leads its own process group), signalling that whole group, and waiting for/reaping the exact child; and the
/// thread signal mask the embedded broker starts its native thread under; the nice value of one thread (the flight
/// recorder's writer); whether a file may be run (the start-up check of <c>executor.binary_path</c>); and who owns a
/// file, without following a link (the recorder's and the cache's files). Constants and opaque-type sizes are glibc's
/// on 64-bit Linux.
/// </summary>
internal static unsafe partial class LibC
{
    private const string Library = "libc";

    public const int EINTR = 4;
    public const int ECHILD = 10;
    public const int ESRCH = 3;

    public const int SIGKILL = 9;

    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;

    public const int SIG_BLOCK = 0;
    public const int SIG_SETMASK = 2;

    public const int P_PID = 1;
    public const int WEXITED = 4;
    public const int WNOWAIT = 0x01000000;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;

    // Opaque glibc types are used only through pointers; these sizes leave generous headroom over glibc's
    // (posix_spawnattr_t 336, posix_spawn_file_actions_t 80, sigset_t 128, siginfo_t 128 bytes).
    public const int SpawnAttrSize = 512;
    public const int FileActionsSize = 256;
    public const int SigSetSize = 256;
    public const int SigInfoSize = 256;

    public const int X_OK = 1;
    public const int W_OK = 2;

    /// <summary>0 when <paramref name="path"/> exists and the worker may do <paramref name="mode"/> with it (<see cref="X_OK"/>: run it).</summary>
    [LibraryImport(Library, EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int access(string path, int mode);

    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_UID = 0x8;
    /// <summary><c>struct statx</c> is 256 bytes on every architecture; <c>stx_uid</c> is at 20, <c>stx_mode</c> at 28.</summary>
    public const int StatxSize = 256;
    public const int StatxUidOffset = 20;
    public const int StatxModeOffset = 28;
    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;

    [LibraryImport(Library, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(Library, EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport(Library, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport(Library, EntryPoint = "waitid", SetLastError = true)]
    public static partial int WaitId(int idType, int id, void* info, int options);

    [LibraryImport(Library, EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    // The posix_spawn family returns an error number instead of setting errno.
    [LibraryImport(Library, EntryPoint = "posix_spawnp")]
    public static partial int PosixSpawnP(int* pid, byte* file, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Library, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int FileActionsInit(void* fileActions);

    [LibraryImport(Library, EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int FileActionsDestroy(void* fileActions);

    [LibraryImport(Library, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int FileActionsAddDup2(void* fileActions, int fd, int newFd);

    [LibraryImport(Library, EntryPoint = "posix_spawn_file_actions_addopen")]
    public static partial int FileActionsAddOpen(void* fileActions, int fd, byte* path, int flags, uint mode);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_init")]
    public static partial int SpawnAttrInit(void* attributes);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_destroy")]
    public static partial int SpawnAttrDestroy(void* attributes);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int SpawnAttrSetFlags(void* attributes, short flags);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int SpawnAttrSetSigMask(void* attributes, void* sigset);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int SpawnAttrSetSigDefault(void* attributes, void* sigset);

    [LibraryImport(Library, EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(void* sigset);

    [LibraryImport(Library, EntryPoint = "sigfillset")]
    public static partial int SigFillSet(void* sigset);

    // Returns an error number instead of setting errno.
    [LibraryImport(Library, EntryPoint = "pthread_sigmask")]
    public static partial int PthreadSigMask(int how, void* set, void* oldSet);
}
