using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using Drakkar.Execution.Posix;

namespace Drakkar.Storage;

/// <summary>
/// The worker's own files in a directory other users may write to: <c>debug.db_dir</c> and <c>cache.db_dir</c> default
/// to <c>/tmp</c>. A file another user placed there, or a link to somewhere else, must never be written through (it
/// would make the worker overwrite a file of the link's choosing) nor read as the worker's own (a planted cache file
/// would feed values to the handler). So the worker creates its files itself, new and readable by this user only, and
/// opens or reads only regular files this user owns.
/// </summary>
internal static class PrivateFiles
{
    /// <summary>The files SQLite keeps next to a database in WAL mode, which the worker creates before SQLite opens it.</summary>
    private static readonly string[] WalCompanions = ["-wal", "-shm"];

    /// <summary>Every file SQLite may keep next to a database (the rollback journal too).</summary>
    private static readonly string[] SqliteCompanions = [.. WalCompanions, "-journal"];

    /// <summary>The file a running worker holds locked for as long as it uses a database (<see cref="HoldInUseLock"/>).</summary>
    private const string InUseSuffix = ".lock";

    /// <summary>A worker id as part of a file name: letters, digits, <c>-</c>, <c>_</c> and <c>.</c> kept, anything else <c>_</c>.</summary>
    public static string SafeName(string workerId) =>
        string.Concat(workerId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));

    /// <summary>
    /// Why the worker could not keep files in <paramref name="directory"/>, or null: checked without writing anything, on
    /// the directory or, when it does not exist yet (the worker creates it), on the nearest part of the path that does.
    /// </summary>
    public static string? UnusableDirectory(string directory)
    {
        var existing = Path.GetFullPath(directory);
        while (!Directory.Exists(existing) && !File.Exists(existing) && Path.GetDirectoryName(existing) is { } parent) existing = parent;
        if (File.Exists(existing)) return $"'{existing}' is a file, not a directory";
        return LibC.access(existing, LibC.W_OK | LibC.X_OK) == 0
            ? null
            : $"'{existing}' is not writable by this user ({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})";
    }

    /// <summary>Whether anything is at <paramref name="path"/>: a file, a directory, or a link (even one to nothing).</summary>
    public static bool Taken(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    /// <summary>Whether anything is at a database's path or at one of its SQLite companions' paths.</summary>
    public static bool DatabaseTaken(string path) => Taken(path) || SqliteCompanions.Any(suffix => Taken(path + suffix));

    /// <summary>
    /// Creates <paramref name="path"/> empty, readable and writable by this user only (0600).
    /// <c>O_CREAT|O_EXCL</c>: false, and nothing touched, when anything is already at the name, a link included.
    /// </summary>
    public static bool TryCreate(string path)
    {
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            new FileStream(path, options).Dispose();
            return true;
        }
        catch (IOException) when (Taken(path))
        {
            return false;
        }
    }

    /// <summary>
    /// Creates a database's file and its <c>-wal</c> and <c>-shm</c> companions as <see cref="TryCreate"/> does, each
    /// where nothing is yet: SQLite then opens files that are already the worker's own, and never creates one itself
    /// (it would follow a link planted at a companion's name in between). True when the database file itself was new.
    /// </summary>
    public static bool TryCreateDatabase(string path)
    {
        var created = TryCreate(path);
        foreach (var suffix in WalCompanions) TryCreate(path + suffix);
        return created;
    }

    /// <summary>
    /// Null when the database at <paramref name="path"/> and each of its SQLite companions is either absent or a regular
    /// file this user owns; otherwise which one is not, and why (for an error or a log line).
    /// </summary>
    public static string? NotOwnDatabase(string path)
    {
        foreach (var file in SqliteCompanions.Select(suffix => path + suffix).Prepend(path))
        {
            if (NotOwnFile(file) is { } why) return $"{file} {why}";
        }
        return null;
    }

    /// <summary>Null when <paramref name="path"/> is absent or a regular file this user owns (a link is neither); else why not.</summary>
    public static unsafe string? NotOwnFile(string path)
    {
        if (!OperatingSystem.IsLinux()) return new FileInfo(path).LinkTarget is not null ? "is a symbolic link" : null;
        var buffer = stackalloc byte[LibC.StatxSize];
        if (LibC.Statx(LibC.AT_FDCWD, path, LibC.AT_SYMLINK_NOFOLLOW, LibC.STATX_TYPE | LibC.STATX_UID, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno == ENOENT ? null : $"cannot be inspected (errno {errno})";
        }
        var type = *(ushort*)(buffer + LibC.StatxModeOffset) & LibC.S_IFMT;
        if (type == S_IFLNK) return "is a symbolic link";
        if (type != LibC.S_IFREG) return "is not a regular file";
        var owner = *(uint*)(buffer + LibC.StatxUidOffset);
        var me = LibC.GetEuid();
        return owner == me ? null : $"is owned by uid {owner}, not by this worker's user (uid {me})";
    }

    /// <summary>
    /// Takes the exclusive advisory lock (<c>flock</c>) of <paramref name="database"/>'s <c>.lock</c> file (created 0600
    /// when absent) and returns the open file that holds it: keep it open while the database is in use, and a peer's
    /// sweep (<see cref="DeleteDatabasesWrittenBefore"/>) leaves the database alone however old its time (a worker whose
    /// cleanup runs less often than a peer's stale limit, or a stopped process). The kernel drops the lock when the
    /// process ends, kill -9 included. Null when it cannot be taken (another process holds it, the file is not this
    /// user's): the database is then used without that protection.
    /// </summary>
    public static FileStream? HoldInUseLock(string database)
    {
        var path = database + InUseSuffix;
        TryCreate(path);
        if (NotOwnFile(path) is not null) return null;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // FileShare.None is an exclusive flock on Unix.
                return new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 40)
            {
                // A peer's sweep holds it for a moment while it looks.
                Thread.Sleep(50);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
    }

    /// <summary>Whether a running process holds <paramref name="database"/>'s in-use lock (<see cref="HoldInUseLock"/>).</summary>
    public static bool InUse(string database)
    {
        var path = database + InUseSuffix;
        if (!File.Exists(path)) return false;
        try
        {
            // A shared flock: refused while the owner holds its exclusive one.
            using var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>
    /// Deletes a database, its SQLite companions and its in-use lock file; false when one could not be deleted (the rest
    /// are deleted still). Only for a database <see cref="NotOwnDatabase"/> found to be this user's.
    /// </summary>
    public static bool DeleteDatabase(string path)
    {
        var all = true;
        foreach (var file in SqliteCompanions.Append(InUseSuffix).Select(suffix => path + suffix).Prepend(path))
        {
            try
            {
                File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                all = false;
            }
        }
        return all;
    }

    /// <summary>
    /// When a database was last written: its file or its write-ahead log, whichever is newer (in WAL mode the database
    /// file itself changes only at checkpoints, so a recent write may be in the log alone).
    /// </summary>
    public static DateTime LastWritten(string database)
    {
        var file = File.GetLastWriteTimeUtc(database);
        // A missing log reads as 1601-01-01.
        var log = File.GetLastWriteTimeUtc(database + "-wal");
        return log > file ? log : file;
    }

    /// <summary>
    /// Deletes the databases in <paramref name="directory"/> matching <paramref name="pattern"/> whose
    /// <paramref name="lastWritten"/> is before <paramref name="oldest"/>, with their SQLite companions, except
    /// <paramref name="keep"/>. Only regular files of this user that <paramref name="recognised"/> accepts (the
    /// caller's own kind of database, not another program's file with a similar name) are deleted; another user's
    /// file, or a link, is left alone. Returns the databases deleted.
    /// </summary>
    public static List<string> DeleteDatabasesWrittenBefore(string directory, string pattern, string? keep, DateTime oldest,
        Func<string, DateTime> lastWritten, Func<string, bool> recognised)
    {
        var deleted = new List<string>();
        if (!Directory.Exists(directory)) return deleted;
        var kept = keep is null ? null : Path.GetFullPath(keep);
        foreach (var file in Directory.EnumerateFiles(directory, pattern))
        {
            if (Path.GetFullPath(file) == kept || lastWritten(file) >= oldest || NotOwnDatabase(file) is not null || InUse(file) || !recognised(file)) continue;
            if (DeleteDatabase(file)) deleted.Add(file);
        }
        return deleted;
    }

    /// <summary>
    /// Whether <paramref name="path"/> is a SQLite database holding <paramref name="table"/>, read-only: how a sweep
    /// tells its own kind of database from another program's file that happens to match its name pattern.
    /// </summary>
    public static bool IsDatabaseWithTable(string path, string table)
    {
        try
        {
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 1,
            }.ToString());
            connection.Open();
            return HasTable(connection, table);
        }
        catch (SqliteException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether the database open on <paramref name="connection"/> holds <paramref name="table"/>; false for a file that
    /// is not a SQLite database at all (SQLite says so only at the first query).
    /// </summary>
    public static bool HasTable(SqliteConnection connection, string table)
    {
        try
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $table";
            command.Parameters.AddWithValue("$table", table);
            return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) == 1;
        }
        catch (SqliteException e) when (e.SqliteErrorCode == SqliteNotADatabase)
        {
            return false;
        }
    }

    private const int SqliteNotADatabase = 26;

    private const int ENOENT = 2;
    private const int S_IFLNK = 0xA000;
}
