using TerDiT.Distributed;
using TorchSharp;
using Xunit;

namespace TerDiT.Tests;

public class DistributedShardingTests
{
    [Fact]
    public void ShardsAreStridedDisjointEqualAndCoverTheGlobalBatch()
    {
        var global = Enumerable.Range(100, 12).ToArray();
        var shards = Enumerable.Range(0, 4).Select(r => DataSharding.Shard<int>(global, r, 4)).ToArray();
        Assert.Equal(new[] { 100, 104, 108 }, shards[0]);
        Assert.Equal(new[] { 103, 107, 111 }, shards[3]);
        Assert.All(shards, s => Assert.Equal(3, s.Length));
        Assert.Equal(global, shards.SelectMany(s => s).Order());
    }

    [Fact]
    public void ShardRowsMatchesShardOnTensors()
    {
        using var t = torch.arange(24).reshape(12, 2);
        using var rows = DataSharding.ShardRows(t, 1, 3);
        Assert.Equal(new long[] { 4, 2 }, rows.shape);
        Assert.Equal(new long[] { 2, 3, 8, 9, 14, 15, 20, 21 }, rows.contiguous().data<long>().ToArray());
    }

    [Fact]
    public void ABatchThatRanksCannotSplitEvenlyIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => DataSharding.Shard<int>(new int[10], 0, 4));
        Assert.Contains("multiple of the number of ranks 4", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => DataSharding.Shard<int>(new int[8], 4, 4));
    }
}
