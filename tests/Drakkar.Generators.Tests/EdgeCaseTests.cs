using Drakkar.Generators.Tests.Infrastructure;

namespace Drakkar.Generators.Tests;

/// <summary>Declarations at the edges of what the generator accepts compile with no diagnostics at all.</summary>
public sealed class EdgeCaseTests
{
    [Fact]
    public void Unusual_but_valid_payload_declarations_compile_cleanly()
    {
        var source = """
            namespace App.Edge;

            public partial class Outer<TKey>
            {
                [Payload] public sealed partial record Nested(string @class, int @event, TKey[]? Ignored = null)
                {
                    [JsonIgnore] public TKey[]? Ignored { get; init; } = Ignored;
                }
            }

            [Payload] public abstract partial class Shape { public string Id { get; init; } = ""; }

            [Payload] public sealed partial class Circle : Shape
            {
                [JsonConstructor] public Circle(double radius) => Radius = radius;
                public Circle() { }
                public double Radius { get; }
                public required List<Dictionary<string, Guid?>> Tags { get; set; }
            }

            [Payload] public sealed partial record WithDefaults(string Name = "n", double Ratio = double.NaN, System.DayOfWeek Day = System.DayOfWeek.Friday, decimal Money = 1.5m);

            public static class Uses
            {
                public static byte[] Json() => KafkaPayload.Of(new Circle(1) { Tags = [] }).Data.ToJsonBytes();
            }
            """;

        var run = GeneratorHarness.Run(source);

        Assert.Empty(run.Described);
        Assert.Equal(4, run.GeneratedSources.Count);
    }

    [Fact]
    public void Generic_payload_members_of_a_type_parameter_are_reported_and_nothing_else()
    {
        var run = GeneratorHarness.Run("""
            namespace App;
            [Payload] public sealed partial record Page<T>(int Number, IReadOnlyList<T> Items);
            """);

        Assert.Equal(
            ["DRK0005 (2:77) `Items`: Member 'Items' of payload 'Page' has type 'IReadOnlyList<T>', which the payload writers cannot handle (generic type parameters are not supported); use a supported type or mark the member [JsonIgnore]"],
            run.Described);
    }
}
