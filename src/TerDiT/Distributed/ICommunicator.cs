using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Distributed;

/// <summary>
/// Collective operations among the <see cref="WorldSize"/> ranks of a data-parallel run. Every rank
/// must call the same operations in the same order with tensors of equal shape and dtype (as with
/// NCCL; a mismatch is a bug that the fake implementation reports and NCCL may hang on).
/// All operations work in place on contiguous tensors and leave the same bits on every rank.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's rank, 0 ≤ Rank &lt; WorldSize; rank 0 is the one that writes files.</summary>
    int Rank { get; }

    /// <summary>Number of ranks.</summary>
    int WorldSize { get; }

    /// <summary>Replaces every tensor by its element-wise sum over all ranks (one grouped collective).</summary>
    void AllReduceSum(IReadOnlyList<Tensor> tensors);

    /// <summary>Replaces <paramref name="tensor"/> on every rank by rank <paramref name="root"/>'s value.</summary>
    void Broadcast(Tensor tensor, int root);

    /// <summary>Returns once every rank has called it and all earlier collectives have completed.</summary>
    void Barrier();
}

/// <summary>Operations built from <see cref="ICommunicator"/>'s primitives.</summary>
public static class CommunicatorExtensions
{
    /// <summary>Element-wise sum over ranks of one tensor, in place.</summary>
    public static void AllReduceSum(this ICommunicator communicator, Tensor tensor) => communicator.AllReduceSum([tensor]);

    /// <summary>
    /// Replaces every tensor by its mean over ranks: the sum, then divided by WorldSize in the tensor's
    /// dtype (floating dtypes only). With one rank nothing happens.
    /// </summary>
    public static void AllReduceAverage(this ICommunicator communicator, IReadOnlyList<Tensor> tensors)
    {
        foreach (var t in tensors)
            if (!t.is_floating_point()) throw new ArgumentException($"averaging needs a floating dtype, not {t.dtype}");
        if (communicator.WorldSize == 1) return;
        communicator.AllReduceSum(tensors);
        using var _ = torch.no_grad();
        using var worldSize = ((long)communicator.WorldSize).ToScalar();
        foreach (var t in tensors) t.div_(worldSize);
    }

    /// <summary>Mean over ranks of one tensor, in place.</summary>
    public static void AllReduceAverage(this ICommunicator communicator, Tensor tensor) => communicator.AllReduceAverage([tensor]);

    /// <summary>Means over ranks of a few scalars (e.g. losses for logging), in one collective on a float64 tensor on <paramref name="device"/>.</summary>
    public static double[] AverageScalars(this ICommunicator communicator, Device device, params double[] values)
    {
        if (communicator.WorldSize == 1) return values.ToArray();
        using var t = torch.tensor(values, device: device);
        communicator.AllReduceAverage(t);
        using var cpu = t.cpu();
        return cpu.data<double>().ToArray();
    }

    /// <summary>
    /// Copies rank 0's values of every parameter and buffer of <paramref name="module"/> to all ranks
    /// (so every replica starts from identical weights).
    /// </summary>
    public static void BroadcastFromRankZero(this ICommunicator communicator, nn.Module module)
    {
        if (communicator.WorldSize == 1) return;
        using var _ = torch.no_grad();
        foreach (var (_, p) in module.named_parameters()) communicator.Broadcast(p, 0);
        foreach (var (_, b) in module.named_buffers()) communicator.Broadcast(b, 0);
    }
}
