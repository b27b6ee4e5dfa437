using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using TerDiT.Runtime.Config;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using Xunit;

namespace TerDiT.Serve.Tests;

/// <summary>
/// A tiny random TerDiT (1×8×8 images, D 32, 3 classes) with every parameter non-zero, served in process on a test
/// server; its model calls go through <see cref="ModelCalls"/>, which records them and can hold them.
/// </summary>
sealed class TestService : IAsyncDisposable
{
    public static readonly TerDiTConfig Tiny = new()
    {
        Name = "test-tiny", InChannels = 1, InputSize = 8, PatchSize = 2, HiddenSize = 32, Depth = 2, NumHeads = 2, NumClasses = 3, FfnMultipleOf = 16,
    };
    public static readonly string[] ClassNames = ["Circle", "Square", "Ankle boot"];

    public static readonly JsonSerializerOptions Json = CreateJson();

    public ModelCalls Calls { get; } = new();
    public InMemoryWeights Weights { get; }
    public GenerationEngine Engine { get; }
    public WebApplication App { get; }
    public HttpClient Client { get; }

    TestService(ServeLimits limits, bool kestrel)
    {
        Weights = RandomWeights(Tiny, seed: 3);
        var model = new ServedModel(Tiny, ClassNames, "cpu",
            ServedModel.Cpu(Weights, threads: 2).ToDictionary(kv => kv.Key, kv => Calls.Wrap(kv.Key, kv.Value)), "exact");
        Engine = new GenerationEngine(model, limits);
        App = ServeApp.Build(Engine, loopbackOnly: true, b =>
        {
            if (kestrel) b.WebHost.UseUrls("http://127.0.0.1:0");
            else b.WebHost.UseTestServer();
        });
        App.StartAsync().GetAwaiter().GetResult();
        Client = kestrel ? new HttpClient { BaseAddress = new Uri(App.Urls.First()) } : App.GetTestClient();
    }

    /// <summary>The service on an in-process test server.</summary>
    public static TestService Start(ServeLimits? limits = null) => new(limits ?? new ServeLimits(), kestrel: false);

    /// <summary>The service on Kestrel at a free loopback port (<see cref="App"/>'s Urls).</summary>
    public static TestService StartKestrel(ServeLimits? limits = null) => new(limits ?? new ServeLimits(), kestrel: true);

    public async Task<GenerationStatus> Post(object request)
    {
        var response = await Client.PostAsJsonAsync("/v1/generations", request, Json);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var status = (await response.Content.ReadFromJsonAsync<GenerationStatus>(Json))!;
        Assert.Equal(status.Links.Self, response.Headers.Location!.OriginalString);
        return status;
    }

    public async Task<GenerationStatus> Get(string id) => (await Client.GetFromJsonAsync<GenerationStatus>($"/v1/generations/{id}", Json))!;

    /// <summary>Polls until the job has ended (30 s at most: the tiny model takes milliseconds a step).</summary>
    public async Task<GenerationStatus> WaitEnd(string id)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var status = await Get(id);
            if (status.State is GenerationState.Succeeded or GenerationState.Failed or GenerationState.Cancelled) return status;
            Assert.True(DateTime.UtcNow < deadline, $"job {id} still {status.State} after 30 s");
            await Task.Delay(10);
        }
    }

    /// <summary>Polls until the job is in <paramref name="state"/> and <paramref name="until"/> holds.</summary>
    public async Task<GenerationStatus> WaitFor(string id, Func<GenerationStatus, bool> until)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var status = await Get(id);
            if (until(status)) return status;
            Assert.True(DateTime.UtcNow < deadline, $"job {id} did not reach the expected status in 30 s (last: {status.State}, step {status.Progress.Step})");
            await Task.Delay(5);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds (30 s at most).</summary>
    public static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"waited 30 s for {what}");
            await Task.Delay(5);
        }
    }

    public async Task<byte[]> Bytes(string path)
    {
        var response = await Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType!.MediaType);
        return await response.Content.ReadAsByteArrayAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Calls.Open();
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        Engine.Dispose();
    }

    static JsonSerializerOptions CreateJson()
    {
        var o = new JsonSerializerOptions();
        ServeApp.ConfigureJson(o);
        o.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Skip;
        return o;
    }

    /// <summary>Weights for every parameter: trits uniform in {−1, 0, 1} with alpha ≈ 1/√fan-in, floats uniform with std ≈ 1/√fan-in (norm weights near 1).</summary>
    public static InMemoryWeights RandomWeights(TerDiTConfig config, int seed)
    {
        var rng = new Random(seed);
        var weights = new InMemoryWeights(config);
        foreach (var p in ParameterSchema.Enumerate(config))
        {
            int n = (int)p.Elements;
            float scale = p.Shape.Length == 2 ? (float)(1.7 / Math.Sqrt(p.Shape[1])) : 0.17f;
            switch (p.Kind)
            {
                case ParameterKind.TernaryWeight:
                    weights.SetTernary(p.Name[..^".weight".Length], Enumerable.Range(0, n).Select(_ => (sbyte)(rng.Next(3) - 1)).ToArray(), scale);
                    break;
                case ParameterKind.Full:
                    float offset = p.Name.EndsWith("norm.weight") ? 1 : 0;
                    weights.SetFull(p.Name, Enumerable.Range(0, n).Select(_ => offset + scale * (float)(2 * rng.NextDouble() - 1)).ToArray());
                    break;
            }
        }
        return weights;
    }
}

/// <summary>Records every model call (mode, labels and timesteps of its rows) and, while held, lets a call run only when allowed.</summary>
sealed class ModelCalls
{
    readonly SemaphoreSlim _permits = new(0);
    volatile bool _held;

    public ConcurrentQueue<(string Mode, int[] Labels, int[] Timesteps)> Log { get; } = new();

    /// <summary>Calls that have started (entered the model, held or not).</summary>
    public int Started => _started;
    int _started;

    public Denoiser Wrap(string mode, Denoiser inner) => (x, t, y, output) =>
    {
        Interlocked.Increment(ref _started);
        if (_held) _permits.Wait();
        Log.Enqueue((mode, y.ToArray(), t.ToArray()));
        inner(x, t, y, output);
    };

    /// <summary>From now on each call waits for <see cref="Allow"/>.</summary>
    public void Hold()
    {
        while (_permits.Wait(0)) { }
        _held = true;
    }

    public void Allow(int calls) => _permits.Release(calls);

    /// <summary>Calls run freely again (and any waiting call goes on).</summary>
    public void Open()
    {
        _held = false;
        _permits.Release(1000);
    }

    /// <summary>Waits until <paramref name="count"/> calls have started (the worker sits in the last one while held).</summary>
    public async Task WaitStarted(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Started < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {Started} of {count} model calls started in 30 s");
            await Task.Delay(2);
        }
    }
}
