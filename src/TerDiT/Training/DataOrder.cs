namespace TerDiT.Training;

/// <summary>
/// Which images a training step sees: the stream of sample positions <c>step·B + j</c> walks through
/// epochs, each epoch a Fisher–Yates permutation of 0..N−1 seeded by <c>Seeds.Derive(seed, EpochStream, epoch)</c>.
/// A batch may straddle two epochs. Pure function of (seed, N, B, step): nothing to save but the step.
/// </summary>
public sealed class DataOrder
{
    readonly ulong seed;
    readonly int count, batchSize;
    long cachedEpoch = -1;
    int[] cachedPermutation = [];

    public DataOrder(ulong seed, int count, int batchSize)
    {
        if (count <= 0) throw new ArgumentException("the dataset is empty");
        if (batchSize <= 0) throw new ArgumentException($"batch size must be positive, not {batchSize}");
        this.seed = seed; this.count = count; this.batchSize = batchSize;
    }

    /// <summary>Epoch and position inside it of the first sample of <paramref name="step"/>.</summary>
    public (long Epoch, int Cursor) Position(long step) => (step * batchSize / count, (int)(step * batchSize % count));

    /// <summary>The dataset indices of step <paramref name="step"/>'s batch (length B).</summary>
    public int[] Batch(long step)
    {
        var idx = new int[batchSize];
        for (int j = 0; j < batchSize; j++)
        {
            long p = step * batchSize + j;
            idx[j] = Permutation(p / count)[(int)(p % count)];
        }
        return idx;
    }

    /// <summary>The order of epoch <paramref name="epoch"/>.</summary>
    public int[] Permutation(long epoch)
    {
        if (epoch == cachedEpoch) return cachedPermutation;
        var perm = new int[count];
        for (int i = 0; i < count; i++) perm[i] = i;
        ulong state = Seeds.Derive(seed, Seeds.EpochStream, (ulong)epoch);
        for (int i = count - 1; i > 0; i--)
        {
            state = Seeds.Mix(state);
            int j = (int)(state % (ulong)(i + 1)); // modulo bias < 2^-32 for any dataset that fits in memory
            (perm[i], perm[j]) = (perm[j], perm[i]);
        }
        cachedEpoch = epoch; cachedPermutation = perm;
        return perm;
    }
}
