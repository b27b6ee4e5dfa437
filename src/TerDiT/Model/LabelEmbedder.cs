using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// Class label → conditioning vector. Parameter <c>embedding_table</c> (NumClasses + 1, cdim); the
/// last row belongs to the null class used for classifier-free guidance. Labels are looked up as
/// given: dropout to the null class is the trainer's job (<see cref="LabelDropout"/>).
/// </summary>
public sealed class LabelEmbedder : nn.Module<Tensor, Tensor>
{
    readonly Embedding embedding_table;

    public LabelEmbedder(int numClasses, long condDim) : base(nameof(LabelEmbedder))
    {
        NumClasses = numClasses;
        embedding_table = nn.Embedding(numClasses + 1, condDim);
        RegisterComponents();
    }

    public int NumClasses { get; }

    /// <summary>y (N) int64 in [0, NumClasses] → (N, cdim).</summary>
    public override Tensor forward(Tensor y) => embedding_table.call(y);

    /// <summary>
    /// Replaces each label by <paramref name="nullClass"/> with probability <paramref name="p"/>.
    /// Always draws exactly N uniforms from the CPU <paramref name="generator"/> (so the random stream
    /// does not depend on p or the device), then moves the mask to y's device. Returns a new tensor.
    /// </summary>
    public static Tensor LabelDropout(Tensor y, double p, int nullClass, Generator generator)
    {
        if (y.dim() != 1) throw new ArgumentException($"labels must be a 1-D tensor (N), got shape [{string.Join(", ", y.shape)}]");
        if (p is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
        using var scope = NewDisposeScope();
        using var s = new ScalarHolder();
        var drop = (rand(y.shape[0], generator: generator) < s.Of(p)).to(y.device);   // (N) bool
        return scope.MoveToOuter(where(drop, full_like(y, s.Of(nullClass)), y));
    }
}
