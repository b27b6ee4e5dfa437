using TerDiT.Distributed;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Tests;

public class DistributedEnvironmentTests
{
    static Func<string, string?> Env(params (string, string)[] vars) => name => vars.FirstOrDefault(v => v.Item1 == name).Item2;

    [Fact]
    public void ReadsTheLaunchedRank()
    {
        Assert.Null(DistributedEnvironment.Read(Env()));
        var env = DistributedEnvironment.Read(Env(("TERDIT_RANK", "1"), ("TERDIT_WORLD_SIZE", "4"), ("TERDIT_RENDEZVOUS", "/run/x")));
        Assert.Equal(new DistributedEnvironment(1, 4, "/run/x"), env);
        Assert.False(env!.IsMain);
    }

    [Fact]
    public void BadValuesNameTheVariable()
    {
        var e = Assert.Throws<InvalidOperationException>(() => DistributedEnvironment.Read(Env(("TERDIT_RANK", "4"), ("TERDIT_WORLD_SIZE", "4"), ("TERDIT_RENDEZVOUS", "/x"))));
        Assert.Contains("TERDIT_RANK", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => DistributedEnvironment.Read(Env(("TERDIT_RANK", "0"), ("TERDIT_WORLD_SIZE", "two"), ("TERDIT_RENDEZVOUS", "/x"))));
        Assert.Contains("TERDIT_WORLD_SIZE", e.Message);
        e = Assert.Throws<InvalidOperationException>(() => DistributedEnvironment.Read(Env(("TERDIT_RANK", "0"), ("TERDIT_WORLD_SIZE", "2"))));
        Assert.Contains("TERDIT_RENDEZVOUS", e.Message);
    }

    [Fact]
    public async Task RendezvousHandsTheIdFromRankZeroToAWaitingRank()
    {
        using var dir = new TempDirectory("rdv");
        var path = Path.Combine(dir, "id");
        var id = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
        var waiter = Task.Run(() => Rendezvous.Wait(path, 128, TimeSpan.FromSeconds(30)));
        await Task.Delay(100);
        Rendezvous.Publish(path, id);
        Assert.Equal(id, await waiter);
        Assert.Equal([path], Directory.GetFiles(dir)); // no temporary file left behind
    }

    [Fact]
    public void RendezvousTimesOutAndRefusesAFileOfTheWrongLength()
    {
        using var dir = new TempDirectory("rdv");
        var path = Path.Combine(dir, "id");
        var e = Assert.Throws<TimeoutException>(() => Rendezvous.Wait(path, 128, TimeSpan.FromMilliseconds(100)));
        Assert.Contains(path, e.Message);
        File.WriteAllBytes(path, new byte[5]);
        Assert.Throws<InvalidDataException>(() => Rendezvous.Wait(path, 128, TimeSpan.FromSeconds(1)));
    }
}
