using System.Text;
using Drakkar.Runtime.Tests.Pipeline;

namespace Drakkar.Runtime.Tests.Handlers;

public sealed class TypedInputTests
{
    private sealed class NoteHandler : DrakkarHandler<Note>
    {
        public override ValueTask<IReadOnlyList<ExecutorTask>> Arrange(IReadOnlyList<SourceMessage<Note>> messages, PendingContext pending) =>
            ValueTask.FromResult<IReadOnlyList<ExecutorTask>>([]);
    }

    private static SourceMessage<Note> Decode(byte[]? value, byte[]? key = null) =>
        (SourceMessage<Note>)new NoteHandler().CreateMessage("in", 3, 42, key, value, DateTimeOffset.UnixEpoch, []);

    [Fact]
    public void A_valid_value_is_decoded_before_arrange()
    {
        var message = Decode(Encoding.UTF8.GetBytes("{\"text\":\"hello\",\"extra\":[1,2]}"));
        Assert.Equal("hello", message.Payload?.Text);
        Assert.Null(message.DecodeError);
        Assert.Equal(42, message.Offset);
        Assert.Equal(3, message.Partition);
    }

    [Fact]
    public void An_undecodable_value_keeps_its_raw_bytes_has_a_null_payload_and_says_why()
    {
        var raw = Encoding.UTF8.GetBytes("{\"text\": 12");
        var message = Decode(raw);
        Assert.Null(message.Payload);
        Assert.Equal(raw, message.Value);
        Assert.Contains("Note", message.DecodeError);
    }

    [Fact]
    public void A_null_value_and_key_make_a_normal_message_with_an_empty_value()
    {
        var message = Decode(value: null, key: null);
        Assert.Empty(message.Value);
        Assert.Null(message.Key);
        Assert.Null(message.Payload);
        Assert.NotNull(message.DecodeError);
    }

    [Fact]
    public void A_raw_handler_keeps_a_null_value_as_an_empty_array()
    {
        var handler = new ScriptedHandler();
        var message = handler.CreateMessage("in", 0, 1, null, null, DateTimeOffset.UnixEpoch, []);
        Assert.Empty(message.Value);
        Assert.Equal("in[0]@1", handler.MessageLabel(message));
    }
}
