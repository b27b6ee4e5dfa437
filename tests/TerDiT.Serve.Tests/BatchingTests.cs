using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json;
using TerDiT.Runtime.Imaging;
using TerDiT.Runtime;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using Xunit;

namespace TerDiT.Serve.Tests;

/// <summary>Requests sharing forward passes, leaving them (cancel, disconnect), and the events that follow a job.</summary>
public class BatchingTests
{
    static readonly object A = new { classes = new[] { 0, 2 }, per_class = 2, steps = 4, sampler = "ddpm", cfg = 2.0, seed = 11 };  // 4 guided images: 8 rows
    static readonly object B = new { @class = 1, per_class = 3, steps = 6, sampler = "ddim", cfg = 1.0, seed = 5 };                   // 3 unguided images: 3 rows
    static readonly object C = new { @class = 2, per_class = 2, steps = 3, cfg = 1.5, seed = 5, mode = "a8" };
    static readonly object D = new { @class = 0, steps = 5, cfg = 1.0, seed = 11, mode = "a8" };

    static async Task<byte[]> Alone(TestService service, object request)
    {
        var job = await service.WaitEnd((await service.Post(request)).Id);
        Assert.Equal(GenerationState.Succeeded, job.State);
        return await service.Bytes(job.Links.Image!);
    }

    [Fact]
    public async Task BatchedRequestsGiveTheSamePngBytesAsAlone()
    {
        await using var service = TestService.Start();
        object[] requests = [A, B, C, D];
        var alone = new List<byte[]>();
        foreach (var r in requests) alone.Add(await Alone(service, r));
        Assert.All(service.Calls.Log, call => Assert.True(call.Labels.Length is 8 or 3 or 4 or 1, $"a call of {call.Labels.Length} rows while alone"));

        service.Calls.Log.Clear();
        service.Calls.Hold();
        int started = service.Calls.Started;
        var jobs = new List<GenerationStatus> { await service.Post(A) };
        await service.Calls.WaitStarted(started + 1); // A's first step is in the model
        foreach (var r in requests[1..]) jobs.Add(await service.Post(r));
        service.Calls.Open();
        for (int i = 0; i < jobs.Count; i++)
        {
            var done = await service.WaitEnd(jobs[i].Id);
            Assert.Equal(GenerationState.Succeeded, done.State);
            Assert.Equal(alone[i], await service.Bytes(done.Links.Image!));
        }
        var calls = service.Calls.Log.ToArray();
        Assert.Contains(calls, c => c.Mode == "exact" && c.Labels.Length == 8 + 3);  // A and B in one pass
        Assert.Contains(calls, c => c.Mode == "a8" && c.Labels.Length == 4 + 1);     // C and D in one pass
        Assert.Contains(calls, c => c.Timesteps.Distinct().Count() > 1);             // different steps, different timesteps
    }

    [Fact]
    public async Task OneRequestAtATimeWhenMaxRunningIsOne()
    {
        await using var service = TestService.Start(new ServeLimits { MaxRunningJobs = 1 });
        service.Calls.Hold();
        var a = await service.Post(A);
        var b = await service.Post(B);
        service.Calls.Open();
        await service.WaitEnd(a.Id);
        await service.WaitEnd(b.Id);
        Assert.All(service.Calls.Log, c => Assert.True(c.Labels.Length is 8 or 3, $"a pass of {c.Labels.Length} rows mixes the two requests"));
        Assert.True(service.Calls.Log.Take(4).All(c => c.Labels.Length == 8)); // A first, all four steps, then B
    }

    [Fact]
    public async Task ImagesBeyondTheBatchJoinAsRoomFrees()
    {
        await using var service = TestService.Start(new ServeLimits { BatchImages = 2 });
        var job = await service.Post(new { classes = new[] { 0, 1, 2 }, per_class = 2, steps = 3, sampler = "ddim", cfg = 1.0, seed = 2 });
        await service.WaitEnd(job.Id);
        Assert.All(service.Calls.Log, c => Assert.True(c.Labels.Length <= 2));
        using var pipe = new TerDiTPipeline(service.Weights, new RuntimeOptions { Threads = 1 });
        var pixels = PngGrid.ToPixels(pipe.Sample([0, 1, 2], 2, 3, SamplerKind.Ddim, 1.0, 2));
        Assert.Equal(PngGrid.Encode(pixels, 6, 1, 8, 8, 3, 2), await service.Bytes(job.Links.Self + "/image.png"));
    }

    [Fact]
    public async Task CancellingAJobLeavesTheBatchWithoutDisturbingTheOthers()
    {
        await using var service = TestService.Start();
        byte[] bAlone = await Alone(service, B);
        service.Calls.Log.Clear();

        service.Calls.Hold();
        int started = service.Calls.Started;
        var a = await service.Post(new { @class = 0, per_class = 2, steps = 5, cfg = 1.0, seed = 1 });
        await service.Calls.WaitStarted(started + 1);
        var b = await service.Post(B);
        var queued = await service.Post(new { @class = 2, steps = 5, cfg = 1.0, mode = "a8" }); // another mode: waits for the exact images
        service.Calls.Allow(1);
        await service.Calls.WaitStarted(started + 2);                 // a pass with A's and B's images is in the model
        Assert.Equal(GenerationState.Running, (await service.Get(b.Id)).State);
        var cancelled = await service.Client.DeleteAsync(queued.Links.Self); // not yet in a pass: ends at once
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        Assert.Equal(GenerationState.Cancelled, (await service.Get(queued.Id)).State);

        var deleting = service.Client.DeleteAsync(a.Links.Self);       // ends after the pass in progress
        await service.WaitFor(a.Id, _ => true);
        service.Calls.Allow(1);
        var deleted = await deleting;
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Contains("\"cancelled\"", await deleted.Content.ReadAsStringAsync());
        service.Calls.Open();

        Assert.Equal(GenerationState.Succeeded, (await service.WaitEnd(b.Id)).State);
        Assert.Equal(bAlone, await service.Bytes(b.Links.Self + "/image.png"));
        var calls = service.Calls.Log.ToArray();
        Assert.Equal(2 + 3, calls[1].Labels.Length);                  // A and B shared the second pass
        Assert.All(calls.Skip(2), c => Assert.All(c.Labels, y => Assert.Equal(1, y))); // then B alone
        Assert.All(calls, c => Assert.DoesNotContain(2, c.Labels));    // the queued job never ran
        Assert.Equal(GenerationState.Cancelled, (await service.Get(a.Id)).State);
        Assert.Equal(HttpStatusCode.Conflict, (await service.Client.DeleteAsync(a.Links.Self)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await service.Client.DeleteAsync(b.Links.Self)).StatusCode);
    }

    [Fact]
    public async Task EventsFollowEveryStepThenEnd()
    {
        await using var service = TestService.Start();
        service.Calls.Hold();
        var job = await service.Post(new { @class = 1, per_class = 2, steps = 4, seed = 3 });
        using var response = await service.Client.GetAsync(job.Links.Events, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = new List<(string Type, GenerationStatus Status)>();
        var reading = Task.Run(async () =>
        {
            await foreach (var item in SseParser.Create(await response.Content.ReadAsStreamAsync()).EnumerateAsync())
                events.Add((item.EventType, JsonSerializer.Deserialize<GenerationStatus>(item.Data, TestService.Json)!));
        });
        service.Calls.Open();
        await reading.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("done", events[^1].Type);
        Assert.Equal(GenerationState.Succeeded, events[^1].Status.State);
        Assert.NotNull(events[^1].Status.Links.Image);
        Assert.All(events[..^1], e => Assert.Equal("progress", e.Type));
        var steps = events.Select(e => e.Status.Progress.Step).ToArray();
        Assert.Equal(steps.Order(), steps);
        Assert.Equal(4, steps[^1]);
        Assert.True(events.Count >= 3, $"only {events.Count} events for 4 steps");
        // The events of a job that has ended: just its last state.
        using var late = await service.Client.GetAsync(job.Links.Events);
        Assert.StartsWith("event: done", await late.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ClosingTheOnlyEventStreamCancelsTheJob(bool kestrel)
    {
        await using var service = kestrel ? TestService.StartKestrel() : TestService.Start();
        byte[] bAlone = await Alone(service, B);
        service.Calls.Hold();
        int started = service.Calls.Started;
        var a = await service.Post(new { @class = 0, steps = 50, cfg = 1.0 });
        var b = await service.Post(B);
        await service.Calls.WaitStarted(started + 1);

        async Task<(HttpResponseMessage, Stream)> Open(GenerationStatus job)
        {
            var response = await service.Client.GetAsync(job.Links.Events, HttpCompletionOption.ResponseHeadersRead);
            var stream = await response.Content.ReadAsStreamAsync();
            Assert.True(await stream.ReadAsync(new byte[1]) == 1); // the first event has arrived: the server counts this reader
            return (response, stream);
        }
        var (aEvents, aStream) = await Open(a);
        var (bFirst, bFirstStream) = await Open(b);
        var (bSecond, bSecondStream) = await Open(b);
        aStream.Dispose();
        aEvents.Dispose();
        bFirstStream.Dispose();
        bFirst.Dispose();                                           // B still has a reader
        await TestService.Until(() => service.Engine.Find(a.Id)!.CancelRequested, "the server to notice the closed stream");
        service.Calls.Open();

        Assert.Equal(GenerationState.Cancelled, (await service.WaitEnd(a.Id)).State);
        Assert.Equal(GenerationState.Succeeded, (await service.WaitEnd(b.Id)).State);
        Assert.Equal(bAlone, await service.Bytes(b.Links.Self + "/image.png"));
        Assert.True((await service.Get(a.Id)).Progress.Step < 50);
        bSecond.Dispose();
    }
}
