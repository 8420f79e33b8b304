using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using static Drakkar.Sinks.Filesystem.FileNative;

namespace Drakkar.Sinks.Filesystem;

/// <summary>
/// Opens a payload's file beneath base_path without ever following a symlink, and appends to it with one
/// <c>write(2)</c>. The kernel resolves the path relative to an open handle of the base directory:
/// <c>openat2</c> with <c>RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS</c>, or, where the kernel lacks it (before 5.6),
/// one <c>openat(…, O_NOFOLLOW)</c> per component. Checking a path and then reopening it by name could be raced
/// by swapping a directory for a symlink; resolving and opening in one step cannot. The file is opened
/// <c>O_APPEND</c> (the kernel places every write at the end, so writers in several processes never overwrite
/// each other) and <c>O_NONBLOCK</c> (a FIFO fails at once instead of blocking), then must be a regular file with
/// exactly one link (a hard link to a file outside base_path is refused).
/// </summary>
internal static unsafe class BeneathFile
{
    private const uint CreatedFileMode = 0x1B6; // 0666, narrowed by the process umask like any created file
    private static volatile bool s_openat2Missing;

    /// <summary>An <c>O_PATH</c> handle of the base directory (symlinks in the configured path itself are followed: it is the operator's choice).</summary>
    public static SafeFileHandle OpenBase(string basePath, string configPath)
    {
        var fd = OpenAtPath(-100 /* AT_FDCWD */, Path.GetFullPath(basePath), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new SinkDeliveryException(
                $"{configPath} '{basePath}' does not exist or is not a directory ({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}); create it first.");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// Whether <paramref name="configuredBase"/> still names the directory <paramref name="baseDirectory"/> was opened on
    /// (same device and inode, symlinks in the configured path followed as when it was opened). False when it was
    /// renamed away or replaced (a rotated output directory), or when nothing is at the path any more.
    /// </summary>
    public static bool StillAt(SafeFileHandle baseDirectory, string configuredBase)
    {
        StatX opened, named;
        var empty = (byte)0;
        var path = NullTerminated(Path.GetFullPath(configuredBase));
        fixed (byte* p = path)
        {
            return Statx((int)baseDirectory.DangerousGetHandle(), &empty, AT_EMPTY_PATH, STATX_INO, &opened) == 0
                && Statx(-100 /* AT_FDCWD */, p, 0, STATX_INO, &named) == 0
                && opened.Ino == named.Ino && opened.DevMajor == named.DevMajor && opened.DevMinor == named.DevMinor;
        }
    }

    /// <summary>Opens <paramref name="relative"/> under the base for appending, creating it if needed; refusals name the path.</summary>
    public static SafeFileHandle OpenForAppend(SafeFileHandle baseDirectory, string relative, string configuredBase, bool componentWalk = false) =>
        OpenBeneath(baseDirectory, relative, configuredBase, componentWalk, create: true)!;

    /// <summary>
    /// Opens <paramref name="relative"/> under the base for appending if it exists; null when it does not yet and its
    /// parent directory does (so <see cref="OpenForAppend(SafeFileHandle, string, string, bool)"/> would create it).
    /// Refuses what that would refuse, without creating anything: a batch checks all its paths before it creates a file.
    /// </summary>
    public static SafeFileHandle? OpenExistingForAppend(SafeFileHandle baseDirectory, string relative, string configuredBase, bool componentWalk = false) =>
        OpenBeneath(baseDirectory, relative, configuredBase, componentWalk, create: false);

    private static SafeFileHandle? OpenBeneath(SafeFileHandle baseDirectory, string relative, string configuredBase, bool componentWalk, bool create)
    {
        var components = Components(relative, configuredBase);
        var added = false;
        baseDirectory.DangerousAddRef(ref added);
        try
        {
            var fd = Open(baseDirectory, components, create ? AppendFlags : AppendFlags & ~O_CREAT, componentWalk);
            if (fd == -ENOENT && !create)
            {
                // The file is missing, or a directory on its way: it may be created only in the first case.
                var parentErrno = ParentErrno(baseDirectory, components, componentWalk);
                if (parentErrno == 0) return null;
                fd = -parentErrno;
            }
            if (fd < 0) throw -fd == ENOENT ? Missing(baseDirectory, relative, configuredBase) : OpenFailed(-fd, relative, configuredBase);
            var file = new SafeFileHandle(fd, ownsHandle: true);
            try
            {
                EnsurePlainFile(file, relative, configuredBase);
                return file;
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }
        finally
        {
            if (added) baseDirectory.DangerousRelease();
        }
    }

    /// <summary>
    /// Opens a path the operator configured (the log file: any directory, symlinks followed) for appending with
    /// <c>O_APPEND</c>, creating it if needed.
    /// </summary>
    public static SafeFileHandle OpenForAppend(string path)
    {
        var fd = OpenAtPath(-100 /* AT_FDCWD */, Path.GetFullPath(path), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, CreatedFileMode);
        if (fd < 0) throw new IOException($"Cannot open '{path}' for appending: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// Writes all of <paramref name="data"/> with one <c>write(2)</c>, looping only when the kernel writes less
    /// (disk full, a signal): O_APPEND makes each call land at the end of the file as one unit.
    /// </summary>
    public static void AppendAll(SafeFileHandle file, ReadOnlySpan<byte> data, string relative)
    {
        fixed (byte* start = data)
        {
            var written = 0;
            while (written < data.Length)
            {
                var result = Write((int)file.DangerousGetHandle(), start + written, (nuint)(data.Length - written));
                if (result >= 0)
                {
                    written += (int)result;
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR) continue;
                throw new IOException($"Appending to '{relative}' failed after {written} of {data.Length} bytes: {Marshal.GetPInvokeErrorMessage(errno)}.");
            }
        }
    }

    /// <summary>0 when the directory the file would be created in is there (beneath the base, reached without symlinks), else why not.</summary>
    private static int ParentErrno(SafeFileHandle baseDirectory, string[] components, bool componentWalk)
    {
        if (components.Length == 1) return BaseGone(baseDirectory) ? ENOENT : 0;
        var fd = Open(baseDirectory, components[..^1], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, componentWalk);
        if (fd < 0) return -fd;
        Execution.Posix.LibC.Close(fd);
        return 0;
    }

    /// <summary>Opens <paramref name="components"/> beneath the base with <paramref name="flags"/>: a descriptor, or minus the errno.</summary>
    private static int Open(SafeFileHandle baseDirectory, string[] components, int flags, bool componentWalk)
    {
        var fd = componentWalk || s_openat2Missing ? -1 : OpenWithOpenat2(baseDirectory, components, flags);
        if (fd == -ENOSYS)
        {
            s_openat2Missing = true;
        }
        if (fd < 0 && (componentWalk || s_openat2Missing)) fd = OpenByComponents(baseDirectory, components, flags);
        return fd;
    }

    private static int OpenWithOpenat2(SafeFileHandle baseDirectory, string[] components, int flags)
    {
        var how = new OpenHow
        {
            Flags = (ulong)flags,
            // The kernel refuses a mode without O_CREAT.
            Mode = (flags & O_CREAT) != 0 ? CreatedFileMode : 0,
            Resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        var path = NullTerminated(string.Join('/', components));
        fixed (byte* p = path)
        {
            while (true)
            {
                var fd = OpenAt2((int)baseDirectory.DangerousGetHandle(), p, &how);
                if (fd >= 0) return fd;
                var errno = Marshal.GetLastPInvokeError();
                if (errno is EINTR or EAGAIN) continue;
                // E2BIG: the kernel does not know this version of struct open_how; treat it like a missing openat2.
                return errno is ENOSYS or E2BIG ? -ENOSYS : -errno;
            }
        }
    }

    /// <summary>The fallback: each directory opened with O_NOFOLLOW relative to the previous one, then the last component with <paramref name="flags"/>.</summary>
    private static int OpenByComponents(SafeFileHandle baseDirectory, string[] components, int flags)
    {
        var directory = (int)baseDirectory.DangerousGetHandle();
        var owned = -1;
        try
        {
            for (var i = 0; i < components.Length; i++)
            {
                var last = i == components.Length - 1;
                var fd = OpenAtPath(directory, components[i], last ? flags : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                    last && (flags & O_CREAT) != 0 ? CreatedFileMode : 0);
                if (fd < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    // O_DIRECTORY reports a symlinked directory as "not a directory"; say what it really is.
                    return errno == ENOTDIR && (!last || (flags & O_DIRECTORY) != 0) && IsSymlink(directory, components[i]) ? -ELOOP : -errno;
                }
                if (owned >= 0) Execution.Posix.LibC.Close(owned);
                if (last)
                {
                    owned = -1;
                    return fd;
                }
                directory = owned = fd;
            }
            return -ENOENT;
        }
        finally
        {
            if (owned >= 0) Execution.Posix.LibC.Close(owned);
        }
    }

    private static bool IsSymlink(int directory, string name)
    {
        StatX status;
        var bytes = NullTerminated(name);
        fixed (byte* p = bytes)
        {
            return Statx(directory, p, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &status) == 0 && (status.Mode & S_IFMT) == S_IFLNK;
        }
    }

    private static int AppendFlags => O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW;

    private static int OpenAtPath(int directory, string path, int flags, uint mode)
    {
        var bytes = NullTerminated(path);
        fixed (byte* p = bytes)
        {
            while (true)
            {
                var fd = OpenAt(directory, p, flags, mode);
                if (fd >= 0 || Marshal.GetLastPInvokeError() != EINTR) return fd;
            }
        }
    }

    private static void EnsurePlainFile(SafeFileHandle file, string relative, string configuredBase)
    {
        StatX status;
        var empty = (byte)0;
        if (Statx((int)file.DangerousGetHandle(), &empty, AT_EMPTY_PATH, STATX_TYPE | STATX_NLINK, &status) != 0)
            throw new IOException($"Cannot inspect '{relative}' under base_path '{configuredBase}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        if ((status.Mode & S_IFMT) != S_IFREG)
            throw new SinkDeliveryException($"'{relative}' under base_path '{configuredBase}' is not a regular file (a FIFO, socket or device); refused.");
        if (status.Nlink != 1)
            throw new SinkDeliveryException(
                $"'{relative}' under base_path '{configuredBase}' has {status.Nlink} hard links; a file that is also reachable from elsewhere (a hard link) is refused.");
    }

    private static Exception OpenFailed(int errno, string relative, string configuredBase) => errno switch
    {
        ELOOP => Traversal(relative, configuredBase, "it goes through a symlink, and symlinks below base_path are not followed"),
        EXDEV => Traversal(relative, configuredBase, "it resolves outside"),
        ENXIO => new SinkDeliveryException($"'{relative}' under base_path '{configuredBase}' is not a regular file (a FIFO, socket or device); refused."),
        ENOTDIR => new SinkDeliveryException($"A directory in '{relative}' under base_path '{configuredBase}' is not a directory."),
        EISDIR => new SinkDeliveryException($"'{relative}' under base_path '{configuredBase}' is a directory, not a file."),
        EACCES or EPERM or EROFS => new SinkDeliveryException($"Cannot open '{relative}' under base_path '{configuredBase}' for appending: {Marshal.GetPInvokeErrorMessage(errno)}."),
        // The payload's path, not the destination, is at fault: refused, so one such payload never holds the sink.
        ENAMETOOLONG => new SinkDeliveryException($"'{Shortened(relative)}' under base_path '{configuredBase}' is too long: a name may have " +
            "255 bytes and a path 4,095; refused."),
        _ => new IOException($"Cannot open '{relative}' under base_path '{configuredBase}' for appending: {Marshal.GetPInvokeErrorMessage(errno)}."),
    };

    /// <summary>The start of a path too long to quote whole in an error.</summary>
    private static string Shortened(string relative) => relative.Length <= 120 ? relative : relative[..120] + $"… ({relative.Length} characters)";

    /// <summary>
    /// The names on the way from base_path to the file (<c>.</c> and empty ones dropped); throws when the path is empty,
    /// absolute, climbs out with <c>..</c> or names base_path itself. Nothing is opened: the checks are on the text.
    /// </summary>
    public static string[] Components(string relative, string configuredBase)
    {
        if (string.IsNullOrEmpty(relative) || relative.Contains('\0', StringComparison.Ordinal))
            throw new SinkDeliveryException($"File path '{relative}' is empty or contains a NUL character.");
        if (relative.StartsWith('/'))
            throw Traversal(relative, configuredBase, "absolute paths are not allowed");
        var components = relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(c => c != ".").ToArray();
        if (components.Contains(".."))
            throw Traversal(relative, configuredBase, "'..' components are not allowed");
        if (components.Length == 0)
            throw new SinkDeliveryException($"File path '{relative}' names base_path '{configuredBase}' itself, not a file in it.");
        return components;
    }

    /// <summary>The refusal of a path whose parent directory does not exist under base_path.</summary>
    public static SinkDeliveryException MissingParent(string relative, string configuredBase) =>
        new($"The parent directory of '{relative}' does not exist under base_path '{configuredBase}'; the sink does not create directories: create it first.");

    /// <summary>
    /// A directory on the way to the file is missing. When base_path itself is gone (removed while the worker runs: its
    /// handle has no link left), that is an outage of the sink, held and retried (<c>on_outage</c>). Otherwise the
    /// payload named a directory that does not exist: its own path is wrong, so it goes to the DLQ while the sink keeps
    /// delivering everything else (waiting for it would stall every partition behind one payload).
    /// </summary>
    private static Exception Missing(SafeFileHandle baseDirectory, string relative, string configuredBase) =>
        BaseGone(baseDirectory)
            ? new DirectoryNotFoundException($"base_path '{configuredBase}' no longer exists (removed while the worker runs); '{relative}' cannot be written until it is back.")
            : MissingParent(relative, configuredBase);

    /// <summary>Whether base_path was removed while the worker runs (its handle has no link left).</summary>
    private static bool BaseGone(SafeFileHandle baseDirectory)
    {
        StatX status;
        var empty = (byte)0;
        return Statx((int)baseDirectory.DangerousGetHandle(), &empty, AT_EMPTY_PATH, STATX_NLINK, &status) != 0 || status.Nlink == 0;
    }

    private static SinkDeliveryException Traversal(string relative, string configuredBase, string why) =>
        new($"Path traversal refused: '{relative}' escapes base_path '{configuredBase}' ({why}).");

    private static byte[] NullTerminated(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }
}
