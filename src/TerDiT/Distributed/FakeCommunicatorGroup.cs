using System.Runtime.ExceptionServices;
using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT.Distributed;

/// <summary>
/// W ranks as W threads of one process, for testing multi-rank logic without GPUs. Collectives
/// exchange tensor references through shared slots between two barrier phases; every rank reduces
/// the slots in rank order 0, 1, …, W−1, so all ranks obtain bit-identical results. Shapes, dtypes
/// and the operation are checked to match across ranks (a mismatch throws on every rank).
/// </summary>
public sealed class FakeCommunicatorGroup : IDisposable
{
    readonly Barrier barrier;
    readonly object?[] slots;
    readonly CancellationTokenSource cancel = new();
    readonly TimeSpan timeout;

    /// <param name="worldSize">Number of ranks (threads) that will take part in every collective.</param>
    /// <param name="timeout">How long a rank waits for the others inside a collective before failing.</param>
    public FakeCommunicatorGroup(int worldSize, TimeSpan? timeout = null)
    {
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), $"world size must be ≥ 1, not {worldSize}");
        WorldSize = worldSize;
        this.timeout = timeout ?? TimeSpan.FromMinutes(1);
        barrier = new Barrier(worldSize);
        slots = new object?[worldSize];
        Communicators = Enumerable.Range(0, worldSize).Select(r => (ICommunicator)new Member(this, r)).ToArray();
    }

    public int WorldSize { get; }

    /// <summary>The communicator of each rank, indexed by rank; each must be used by one thread only.</summary>
    public IReadOnlyList<ICommunicator> Communicators { get; }

    /// <summary>
    /// Runs <paramref name="body"/> for every rank on its own thread and returns the results by rank.
    /// The first rank to fail cancels the others (their pending collectives throw) and its exception
    /// is rethrown here.
    /// </summary>
    public static T[] Run<T>(int worldSize, Func<ICommunicator, T> body, TimeSpan? timeout = null)
    {
        using var group = new FakeCommunicatorGroup(worldSize, timeout);
        var results = new T[worldSize];
        var failures = new Exception?[worldSize];
        var threads = Enumerable.Range(0, worldSize).Select(r => new Thread(() =>
        {
            try { results[r] = body(group.Communicators[r]); }
            catch (Exception e) { failures[r] = e; group.cancel.Cancel(); }
        }) { Name = $"fake rank {r}" }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        var first = failures.FirstOrDefault(e => e is not null and not OperationCanceledException) ?? failures.FirstOrDefault(e => e is not null);
        if (first is not null) ExceptionDispatchInfo.Capture(first).Throw();
        return results;
    }

    /// <summary><see cref="Run{T}"/> for bodies without a result.</summary>
    public static void Run(int worldSize, Action<ICommunicator> body, TimeSpan? timeout = null) =>
        Run(worldSize, c => { body(c); return 0; }, timeout);

    public void Dispose()
    {
        barrier.Dispose();
        cancel.Dispose();
    }

    void Sync()
    {
        if (!barrier.SignalAndWait(timeout, cancel.Token))
            throw new TimeoutException($"a fake rank waited more than {timeout} for the others: they called different collectives or one stopped calling");
    }

    /// <summary>
    /// Publishes this rank's contribution with a description of the operation, waits for all ranks,
    /// checks that the descriptions agree (without touching other ranks' payloads, which a failing
    /// rank may already have released) and returns all payloads by rank.
    /// </summary>
    object[] Exchange(int rank, string operation, object payload)
    {
        slots[rank] = (operation, payload);
        Sync();
        var all = slots.Select(s => ((string Operation, object Payload))s!).ToArray();
        for (int r = 0; r < all.Length; r++)
            if (all[r].Operation != operation)
                throw new InvalidOperationException($"collective mismatch: rank {rank} called {operation} but rank {r} called {all[r].Operation}");
        return all.Select(a => a.Payload).ToArray();
    }

    static string Describe(string op, IReadOnlyList<Tensor> tensors) =>
        $"{op}[{string.Join(", ", tensors.Select(t => $"{t.dtype}({string.Join("x", t.shape)})"))}]";

    sealed class Member(FakeCommunicatorGroup group, int rank) : ICommunicator
    {
        public int Rank => rank;
        public int WorldSize => group.WorldSize;

        public void AllReduceSum(IReadOnlyList<Tensor> tensors)
        {
            var all = group.Exchange(rank, Describe("AllReduceSum", tensors), tensors);
            var sums = new Tensor[tensors.Count];
            using (torch.no_grad())
                for (int i = 0; i < tensors.Count; i++)
                {
                    sums[i] = ((IReadOnlyList<Tensor>)all[0])[i].clone();
                    for (int r = 1; r < all.Length; r++) sums[i].PlusInPlace(((IReadOnlyList<Tensor>)all[r])[i]);
                }
            group.Sync(); // every rank has read every contribution before any is overwritten
            using (torch.no_grad())
                for (int i = 0; i < tensors.Count; i++) { tensors[i].copy_(sums[i]); sums[i].Dispose(); }
        }

        public void Broadcast(Tensor tensor, int root)
        {
            if ((uint)root >= (uint)group.WorldSize) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} outside 0..{group.WorldSize - 1}");
            var all = group.Exchange(rank, Describe($"Broadcast(root {root})", [tensor]), tensor);
            using var value = rank == root ? null : ((Tensor)all[root]).clone();
            group.Sync();
            if (value is not null) using (torch.no_grad()) tensor.copy_(value);
        }

        public void Barrier()
        {
            group.Exchange(rank, "Barrier", "");
            group.Sync();
        }

        public void Dispose() { }
    }
}
