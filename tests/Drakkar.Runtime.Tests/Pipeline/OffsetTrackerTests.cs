using Drakkar.Pipeline;

namespace Drakkar.Runtime.Tests.Pipeline;

public sealed class OffsetTrackerTests
{
    [Fact]
    public void The_watermark_is_one_past_the_longest_completed_prefix_whatever_the_completion_order()
    {
        var tracker = new OffsetTracker();
        foreach (var offset in new long[] { 10, 11, 12, 14, 15 }) tracker.Register(offset); // 13 is a gap (e.g. a transaction marker)
        Assert.False(tracker.MarkDone(12));
        Assert.False(tracker.MarkDone(11));
        Assert.Equal(-1, tracker.Committable);
        Assert.True(tracker.MarkDone(10));
        Assert.Equal(13, tracker.Committable);
        Assert.False(tracker.MarkDone(15));
        Assert.Equal(13, tracker.Committable);
        Assert.True(tracker.MarkDone(14));
        Assert.Equal(16, tracker.Committable);
        Assert.Equal(0, tracker.Outstanding);
    }

    [Fact]
    public void Offsets_must_be_registered_in_order()
    {
        var tracker = new OffsetTracker();
        tracker.Register(5);
        Assert.Throws<InvalidOperationException>(() => tracker.Register(5));
    }

    [Fact]
    public void Random_completion_orders_never_commit_an_unfinished_offset()
    {
        var random = new Random(1234);
        for (var round = 0; round < 200; round++)
        {
            var tracker = new OffsetTracker();
            var offsets = Enumerable.Range(0, 50).Select(i => (long)i).ToArray();
            foreach (var o in offsets) tracker.Register(o);
            var done = new HashSet<long>();
            foreach (var o in offsets.OrderBy(_ => random.Next()))
            {
                tracker.MarkDone(o);
                done.Add(o);
                for (long below = 0; below < tracker.Committable; below++) Assert.Contains(below, done);
            }
            Assert.Equal(50, tracker.Committable);
        }
    }
}
