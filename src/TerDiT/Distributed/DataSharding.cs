using static TorchSharp.torch;

namespace TerDiT.Distributed;

/// <summary>
/// Splits a global batch among ranks like PyTorch's DistributedSampler splits an epoch: rank r takes
/// the elements at positions r, r+W, r+2W, … . The global batch length must be a multiple of W, so
/// every rank gets the same count, the shards are disjoint, and their union is the global batch —
/// hence over a stream of global batches that walks an epoch permutation, every index of the epoch
/// is seen exactly once by exactly one rank.
/// </summary>
public static class DataSharding
{
    /// <summary>Rank <paramref name="rank"/>'s share (length n/W) of a global batch of length n.</summary>
    public static T[] Shard<T>(ReadOnlySpan<T> global, int rank, int worldSize)
    {
        int perRank = PerRank(global.Length, worldSize);
        if ((uint)rank >= (uint)worldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} outside 0..{worldSize - 1}");
        var shard = new T[perRank];
        for (int i = 0; i < perRank; i++) shard[i] = global[i * worldSize + rank];
        return shard;
    }

    /// <summary>Rows r, r+W, … of a tensor whose first dimension is a global batch, as a new contiguous tensor.</summary>
    public static Tensor ShardRows(Tensor global, int rank, int worldSize)
    {
        int n = checked((int)global.shape[0]);
        PerRank(n, worldSize);
        if ((uint)rank >= (uint)worldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} outside 0..{worldSize - 1}");
        using var view = global.slice(0, rank, n, worldSize);
        return view.contiguous();
    }

    /// <summary>The per-rank batch size n/W; throws when W does not divide the global batch n.</summary>
    public static int PerRank(int globalBatch, int worldSize)
    {
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), $"world size must be ≥ 1, not {worldSize}");
        if (globalBatch % worldSize != 0)
            throw new ArgumentException($"the global batch {globalBatch} must be a multiple of the number of ranks {worldSize}");
        return globalBatch / worldSize;
    }
}
