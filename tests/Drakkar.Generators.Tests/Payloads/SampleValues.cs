namespace Drakkar.Generators.Tests.Payloads;

/// <summary>Values chosen to hit edges: extremes, nulls, unicode, characters JSON must escape, undefined enum values.</summary>
internal static class SampleValues
{
    public static readonly DateTimeOffset Instant = new(2024, 2, 29, 23, 59, 58, 123, TimeSpan.Zero);

    public static Scalars[] Scalars() =>
    [
        new("plain", "maybe", true, 0, 0, 0, 0, 0, 0, 0, 0, 0f, 0d, 0m,
            new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc), Instant, Guid.Empty, [], Severity.Low, Channel.Email,
            null, null, null),
        new("héllo ☃ 𝄞 日本語", null, false, byte.MaxValue, sbyte.MinValue, short.MinValue, ushort.MaxValue, int.MinValue,
            uint.MaxValue, long.MinValue, ulong.MaxValue, float.MaxValue, double.Epsilon, decimal.MaxValue,
            new DateTime(2024, 1, 2, 3, 4, 5, 678, DateTimeKind.Unspecified).AddTicks(9),
            new DateTimeOffset(1999, 12, 31, 23, 0, 0, TimeSpan.FromHours(-5.5)), Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"),
            null, Severity.High, Channel.Sms, int.MaxValue, Instant, Severity.Medium),
        new("<script>\"quote\" 'apos' & \\ / \n\t\r\b\f \u0001 \u007f \u2028", "", true, 1, sbyte.MaxValue, short.MaxValue, 1,
            int.MaxValue, 1, long.MaxValue, 1, 1.5e-45f, 0.1, -0.0001m, DateTime.MinValue, DateTimeOffset.MaxValue,
            Guid.Parse("ffffffff-ffff-ffff-ffff-ffffffffffff"), [0, 1, 2, 250, 251, 252, 253, 254, 255],
            (Severity)42, (Channel)7, -1, null, (Severity)(-3)),
        new("", null, false, 2, -2, -2, 2, -2, 2, -2, 2, -3.4028235e38f, -1.7976931348623157e308, 1.0000000000000000000000000001m,
            new DateTime(2000, 6, 15, 12, 0, 0, DateTimeKind.Utc), new DateTimeOffset(2000, 6, 15, 12, 0, 0, TimeSpan.FromHours(14)),
            Guid.Parse("12345678-9abc-def0-1234-56789abcdef0"), [42], Severity.Medium, Channel.Push, 0, DateTimeOffset.MinValue, null),
    ];

    public static Customer[] Customers() =>
    [
        new(Guid.Parse("6d2e1f0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"), "Ada Lovelace", new Address("12 St James's Sq", "London", null),
            new Address("Analytical Engine Ln \"1\"", "Lønd∅n", 10115), ["vip", "ünïcödé", ""], [1, -2, int.MaxValue], ["a", "b"],
            new List<Address> { new("x", "y", 1), new("p", "q", null) },
            new Dictionary<string, int> { ["clicks"] = 3, ["naïve key \"q\""] = -1, [""] = 0 },
            new Dictionary<string, Address?> { ["home"] = new("a", "b", 2), ["none"] = null },
            [[1.5, -0.0], [], [double.MaxValue]], [Channel.Sms, Channel.Email, (Channel)9], Access.Read | Access.Write)
        {
            LegacyId = "L-1",
            Secret = "never written",
        },
        new(Guid.Empty, "", new Address("", "", 0), null, [], [], [], [], [], new Dictionary<string, Address?>(), [], [], Access.None),
        new(Guid.NewGuid(), "flags", new Address("s", "c", -1), null, ["t"], [0], ["z"], Array.Empty<Address>(),
            new Dictionary<string, int> { ["k"] = 1 }, new Dictionary<string, Address?> { ["k"] = null }, [[0]], [Channel.Push],
            (Access)8),
    ];

    public static Settings[] Settings() =>
    [
        new() { Name = "defaults" },
        new() { Name = "all", Retries = -1, Timeout = new TimeoutPolicy(0.25, "stop"), Comment = "c\u00e9", Hosts = ["h1", "h2"] },
        new() { Name = "nulls", Comment = null, Timeout = null!, Hosts = null! },
    ];
}
