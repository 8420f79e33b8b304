using System.Runtime.InteropServices;

namespace Drakkar.Sinks.Filesystem;

/// <summary>
/// The Linux calls the filesystem sink needs and .NET does not expose: <c>openat2</c> (through <c>syscall</c>, glibc
/// has no wrapper), <c>openat</c>, <c>statx</c> and <c>write</c>. <c>statx</c> is used instead of <c>fstat</c>
/// because its layout is the same on every architecture.
/// </summary>
internal static unsafe partial class FileNative
{
    private const string Library = "libc";
    private const long SysOpenat2 = 437; // the same number on every Linux architecture (new syscalls are unified)

    public const int EINTR = 4;
    public const int ENOENT = 2;
    public const int ENXIO = 6;
    public const int EACCES = 13;
    public const int EPERM = 1;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EROFS = 30;
    public const int ENAMETOOLONG = 36;
    public const int ELOOP = 40;
    public const int ENOSYS = 38;
    public const int EAGAIN = 11;
    public const int E2BIG = 7;

    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_CREAT = 0x40;
    public const int O_APPEND = 0x400;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int O_PATH = 0x200000;
    // The two flags whose values differ between the x86 family and the "generic" Linux ABI (arm64, riscv64…).
    public static readonly int O_DIRECTORY = IsX86 ? 0x10000 : 0x4000;
    public static readonly int O_NOFOLLOW = IsX86 ? 0x20000 : 0x8000;

    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    public const ulong RESOLVE_NO_SYMLINKS = 0x04;
    public const ulong RESOLVE_BENEATH = 0x08;

    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_NLINK = 0x4;
    public const uint STATX_INO = 0x100;
    public const int S_IFMT = 0xF000;
    public const int S_IFREG = 0x8000;
    public const int S_IFLNK = 0xA000;

    private static bool IsX86 => RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86;

    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>The first fields of <c>struct statx</c> (the whole struct is 256 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatX
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int directory, byte* path, OpenHow* how, nuint size);

    public static int OpenAt2(int directory, byte* path, OpenHow* how) => (int)Syscall(SysOpenat2, directory, path, how, (nuint)sizeof(OpenHow));

    [LibraryImport(Library, EntryPoint = "openat", SetLastError = true)]
    public static partial int OpenAt(int directory, byte* path, int flags, uint mode);

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true)]
    public static partial int Statx(int directory, byte* path, int flags, uint mask, StatX* buffer);

    [LibraryImport(Library, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);
}
