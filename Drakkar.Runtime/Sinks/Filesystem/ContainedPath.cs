namespace Drakkar.Sinks.Filesystem;

/// <summary>
/// Resolves a payload's relative path inside a base directory the way the kernel would — following every symlink,
/// then applying <c>..</c> to the resolved directory — and refuses anything that ends up outside (SPEC S13).
/// Resolution is done here rather than by string checks because <c>a/link/../x</c> and symlinks pointing out are
/// exactly the cases lexical normalisation gets wrong.
/// </summary>
internal static class ContainedPath
{
    private const int MaxSymlinkHops = 40;

    /// <summary>The real path of an existing directory.</summary>
    public static string RealDirectory(string path)
    {
        var real = Resolve(Path.GetFullPath(path));
        if (!Directory.Exists(real)) throw new DirectoryNotFoundException($"'{path}' does not exist or is not a directory");
        return real;
    }

    /// <summary>
    /// The real path of <paramref name="relative"/> under <paramref name="realBase"/>; throws
    /// <see cref="SinkDeliveryException"/> for traversal and <see cref="DirectoryNotFoundException"/> when the parent
    /// directory does not exist.
    /// </summary>
    public static string Resolve(string realBase, string relative, string configuredBase)
    {
        if (string.IsNullOrEmpty(relative) || relative.Contains('\0', StringComparison.Ordinal))
            throw new SinkDeliveryException($"File path '{relative}' is empty or contains a NUL character.");
        if (Path.IsPathRooted(relative))
            throw Traversal(relative, configuredBase, "absolute paths are not allowed");
        var resolved = Resolve(Path.Join(realBase, relative));
        if (!IsInside(resolved, realBase) || resolved == realBase)
            throw Traversal(relative, configuredBase, $"it resolves to {resolved}");
        var parent = Path.GetDirectoryName(resolved)!;
        if (!Directory.Exists(parent))
            throw new DirectoryNotFoundException($"The parent directory of '{relative}' does not exist under base_path '{configuredBase}'; create it first.");
        return resolved;
    }

    private static bool IsInside(string path, string realBase) =>
        path == realBase || path.StartsWith(realBase.EndsWith('/') ? realBase : realBase + "/", StringComparison.Ordinal);

    private static SinkDeliveryException Traversal(string relative, string configuredBase, string why) =>
        new($"Path traversal refused: '{relative}' escapes base_path '{configuredBase}' ({why}).");

    /// <summary>
    /// Canonicalises an absolute path component by component, replacing each symlink by its target. Components
    /// that do not exist are kept as they are (the file may be about to be created).
    /// </summary>
    private static string Resolve(string absolute)
    {
        var pending = new Stack<string>(Enumerable.Reverse(absolute.Split('/', StringSplitOptions.RemoveEmptyEntries)));
        var current = "/";
        var hops = 0;
        while (pending.Count > 0)
        {
            var part = pending.Pop();
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? "/";
                continue;
            }
            var candidate = current == "/" ? "/" + part : current + "/" + part;
            var target = new FileInfo(candidate).LinkTarget;
            if (target is null)
            {
                current = candidate;
                continue;
            }
            if (++hops > MaxSymlinkHops) throw new SinkDeliveryException($"Too many symlinks while resolving '{absolute}'.");
            foreach (var piece in Enumerable.Reverse(target.Split('/', StringSplitOptions.RemoveEmptyEntries))) pending.Push(piece);
            if (Path.IsPathRooted(target)) current = "/";
        }
        return current;
    }
}
