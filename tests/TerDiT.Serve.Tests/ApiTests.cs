using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using TerDiT.Runtime.Imaging;
using TerDiT.Runtime;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using Xunit;

namespace TerDiT.Serve.Tests;

public class ApiTests
{
    /// <summary>The grid and images <c>terdit sample --model</c> makes for the same settings: the runtime pipeline, then PngGrid.</summary>
    static (byte[] Grid, byte[][] Images) Expected(TestService service, int[] classes, int perClass, int steps, SamplerKind sampler, double cfg, ulong seed)
    {
        var c = TestService.Tiny;
        using var pipe = new TerDiTPipeline(service.Weights, new RuntimeOptions { Threads = 1, MaxBatch = 3 });
        var pixels = PngGrid.ToPixels(pipe.Sample(classes, perClass, steps, sampler, cfg, seed));
        int n = classes.Length * perClass, per = c.InputSize * c.InputSize;
        return (PngGrid.Encode(pixels, n, 1, c.InputSize, c.InputSize, classes.Length, perClass),
            Enumerable.Range(0, n).Select(k => PngGrid.Encode(pixels.AsSpan(k * per, per), 1, 1, c.InputSize, c.InputSize, 1, 1)).ToArray());
    }

    [Fact]
    public async Task ModelEndpointTellsConfigClassesSamplersAndLimits()
    {
        await using var service = TestService.Start(new ServeLimits { MaxSteps = 200, MaxImagesPerRequest = 12 });
        var model = JsonNode.Parse(await service.Client.GetStringAsync("/v1/model"))!;
        Assert.Equal("test-tiny", (string)model["name"]!);
        Assert.Equal(32, (int)model["config"]!["hidden_size"]!);
        Assert.Equal(TestService.ClassNames, model["classes"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["ddim", "ddpm", "dpm++2m"], model["samplers"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(("dpm++2m", 10), ((string)model["defaults"]!["sampler"]!, (int)model["defaults"]!["steps"]!));
        Assert.Equal(["exact", "a8"], model["modes"]!.AsArray().Select(n => (string)n!));
        Assert.Equal("exact", (string)model["defaults"]!["mode"]!);
        Assert.Equal(200, (int)model["limits"]!["max_steps"]!);
        Assert.Equal(12, (int)model["limits"]!["max_images_per_request"]!);
        Assert.Equal(8, (int)model["image_size"]!);
    }

    [Fact]
    public async Task OpenApiDocumentAndPageAreServed()
    {
        await using var service = TestService.Start();
        var doc = JsonNode.Parse(await service.Client.GetStringAsync(ServeApp.OpenApiPath))!;
        Assert.StartsWith("3.", (string)doc["openapi"]!);
        var paths = doc["paths"]!.AsObject().Select(p => p.Key).ToHashSet();
        foreach (var path in new[] { "/v1/model", "/v1/generations", "/v1/generations/{id}", "/v1/generations/{id}/events",
                     "/v1/generations/{id}/image.png", "/v1/generations/{id}/images/{index}.png" })
            Assert.Contains(path, paths);
        Assert.NotNull(doc["paths"]!["/v1/generations/{id}"]!["delete"]);
        Assert.NotNull(doc["paths"]!["/v1/generations"]!["post"]!["responses"]!["429"]);
        Assert.Contains("dpm++2m", (string)doc["components"]!["schemas"]!["GenerationRequest"]!["properties"]!["sampler"]!["description"]!);

        var page = await service.Client.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        Assert.StartsWith("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single());
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<script src=\"/app.js\"", html);
        Assert.DoesNotContain("http", html.Replace("http-equiv", "")); // nothing from elsewhere
        Assert.Contains("EventSource", await service.Client.GetStringAsync("/app.js"));
        Assert.Contains("progress", await service.Client.GetStringAsync("/app.css"));
    }

    [Fact]
    public async Task GenerationGivesTheSampleCommandsPngsByNameOrLabel()
    {
        await using var service = TestService.Start();
        var job = await service.Post(new { classes = new object[] { "ankle BOOT", 0 }, per_class = 2, steps = 3, sampler = "ddpm", cfg = 2.0, seed = 7 });
        Assert.Equal(32, job.Id.Length);
        Assert.Equal([2, 0], job.Settings.ClassIndices);
        Assert.Equal(["Ankle boot", "Circle"], job.Settings.Classes);
        var done = await service.WaitEnd(job.Id);
        Assert.Equal(GenerationState.Succeeded, done.State);
        Assert.Equal(new GenerationProgress(3, 3, 4, 4), done.Progress);
        Assert.True(done.Started >= done.Created && done.Finished >= done.Started);

        var (grid, images) = Expected(service, [2, 0], 2, 3, SamplerKind.Ddpm, 2.0, 7);
        Assert.Equal(grid, await service.Bytes(done.Links.Image!));
        Assert.Equal(4, done.Links.Images!.Length);
        for (int k = 0; k < 4; k++) Assert.Equal(images[k], await service.Bytes(done.Links.Images[k]));
        Assert.NotEqual(images[0], images[1]); // each image its own noise

        var missing = await service.Client.GetAsync($"/v1/generations/{job.Id}/images/4.png");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task DefaultsFillTheRequestAndADrawnSeedIsReported()
    {
        await using var service = TestService.Start();
        var job = await service.Post(new { @class = "Square", steps = 2 });
        var s = job.Settings;
        Assert.Equal([1], s.ClassIndices);
        Assert.Equal((1, 2, "dpm++2m", 1.5, "exact"), (s.PerClass, s.Steps, s.Sampler, s.Cfg, s.Mode));
        Assert.True(job.Settings.Seed < 1UL << 53);
        await service.WaitEnd(job.Id);
        var (grid, _) = Expected(service, [1], 1, 2, SamplerKind.DpmPlusPlus2M, 1.5, job.Settings.Seed);
        Assert.Equal(grid, await service.Bytes(job.Links.Self + "/image.png"));
    }

    public static TheoryData<string, string> BadBodies => new()
    {
        { """{"classes": ["Circle", "Triangle"]}""", "classes[1]" },
        { """{"classes": [0, 3]}""", "classes[1]" },
        { """{"class": true}""", "class" },
        { """{"classes": []}""", "classes" },
        { """{"steps": 4}""", "classes" },
        { """{"class": 0, "classes": [1]}""", "class" },
        { """{"class": 0, "steps": 0}""", "steps" },
        { """{"class": 0, "steps": 201}""", "steps" },
        { """{"class": 0, "steps": "many"}""", "steps" },
        { """{"class": 0, "per_class": 0}""", "per_class" },
        { """{"class": 0, "cfg": "NaN"}""", "cfg" },
        { """{"class": 0, "cfg": "Infinity"}""", "cfg" },
        { """{"class": 0, "cfg": 0.5}""", "cfg" },
        { """{"class": 0, "sampler": "euler"}""", "sampler" },
        { """{"class": 0, "mode": "fp8"}""", "mode" },
        { """{"class": 0, "seed": -1}""", "seed" },
        { """{"class": 0, "step": 3}""", "step" },
        { """{"class": 0, "steps": 3""", "body" },
        { """[1, 2]""", "body" },
        { """null""", "body" },
    };

    [Theory, MemberData(nameof(BadBodies))]
    public async Task BadRequestsGet400ProblemDetailsNamingTheField(string body, string field)
    {
        await using var service = TestService.Start(new ServeLimits { MaxSteps = 200 });
        var response = await service.Client.PostAsync("/v1/generations", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(400, (int)problem["status"]!);
        var errors = problem["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(field), $"errors name {string.Join(", ", errors.Select(e => e.Key))}, not {field}: {problem}");
        Assert.False(string.IsNullOrWhiteSpace((string)errors[field]![0]!));
        Assert.Equal(0, service.Calls.Started); // nothing was queued
    }

    [Fact]
    public async Task StepsBeyondWhatTheSamplerTakesGet400()
    {
        await using var service = TestService.Start(new ServeLimits());         // up to 1000 steps; DPM-Solver++ takes 999 on T = 1000
        var response = await service.Client.PostAsJsonAsync("/v1/generations", new { @class = 0, sampler = "dpm++2m", steps = 1000 });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]!.AsObject();
        Assert.Contains("1..999 with dpm++2m", (string)errors["steps"]![0]!);
        Assert.Equal(0, service.Calls.Started);
    }

    [Fact]
    public async Task AClassNameThatIsNotValidUtf8Gets400NamingTheClass()
    {
        await using var service = TestService.Start(new ServeLimits());
        byte[] body = [.. "{\"classes\": [\"c"u8, 0x83, .. "a\", 1]}"u8]; // 0x83: a continuation byte with no lead byte
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        var response = await service.Client.PostAsync("/v1/generations", content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]!.AsObject();
        Assert.Contains("not valid UTF-8", (string)errors["classes[0]"]![0]!);
        Assert.Equal(0, service.Calls.Started);
    }

    [Fact]
    public async Task LimitsGive413And415AndUnknownJobs404()
    {
        await using var service = TestService.Start(new ServeLimits { MaxImagesPerRequest = 5, MaxBodyBytes = 200 });
        async Task<JsonNode> Expect(HttpStatusCode code, HttpResponseMessage response)
        {
            Assert.Equal(code, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        }
        var tooMany = await Expect(HttpStatusCode.RequestEntityTooLarge, await service.Client.PostAsJsonAsync("/v1/generations", new { classes = new[] { 0, 1, 2 }, per_class = 2 }));
        Assert.Contains("6 images", (string)tooMany["detail"]!);
        string padded = $$"""{"class": 0, "sampler": "ddim"{{new string(' ', 200)}}}""";
        await Expect(HttpStatusCode.RequestEntityTooLarge, await service.Client.PostAsync("/v1/generations", new StringContent(padded, Encoding.UTF8, "application/json")));
        // Without a Content-Length (chunked), the limit holds while reading.
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(padded)));
        chunked.Headers.ContentType = new("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/generations") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        await Expect(HttpStatusCode.RequestEntityTooLarge, await service.Client.SendAsync(request));
        await Expect(HttpStatusCode.UnsupportedMediaType, await service.Client.PostAsync("/v1/generations", new StringContent("""{"class": 0}""", Encoding.UTF8, "text/plain")));

        string unknown = new('a', 32);
        foreach (var path in new[] { $"/v1/generations/{unknown}", $"/v1/generations/{unknown}/events", $"/v1/generations/{unknown}/image.png", $"/v1/generations/{unknown}/images/0.png" })
            await Expect(HttpStatusCode.NotFound, await service.Client.GetAsync(path));
        await Expect(HttpStatusCode.NotFound, await service.Client.DeleteAsync($"/v1/generations/{unknown}"));
        Assert.Equal(0, service.Calls.Started);
    }

    [Fact]
    public async Task QueueLimitGives429AndEveryAcceptedJobCompletes()
    {
        await using var service = TestService.Start(new ServeLimits { MaxPendingJobs = 2 });
        service.Calls.Hold();
        var a = await service.Post(new { @class = 0, steps = 2 });
        var b = await service.Post(new { @class = 1, steps = 2 });
        var refused = await service.Client.PostAsJsonAsync("/v1/generations", new { @class = 2, steps = 2 });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter!.Delta);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType!.MediaType);

        var queued = await service.Get(b.Id);
        service.Calls.Open();
        Assert.Equal(GenerationState.Succeeded, (await service.WaitEnd(a.Id)).State);
        Assert.Equal(GenerationState.Succeeded, (await service.WaitEnd(b.Id)).State);
        var c = await service.Post(new { @class = 2, steps = 2 }); // room again
        Assert.Equal(GenerationState.Succeeded, (await service.WaitEnd(c.Id)).State);
    }

    [Fact]
    public async Task ImagesOfAnUnfinishedJobAre409()
    {
        await using var service = TestService.Start();
        service.Calls.Hold();
        var job = await service.Post(new { @class = 0, steps = 2 });
        var response = await service.Client.GetAsync(job.Links.Self + "/image.png");
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task HostsOtherThanLoopbackAreRefused()
    {
        await using var service = TestService.Start();
        var request = new HttpRequestMessage(HttpMethod.Get, "/v1/model");
        request.Headers.Host = "attacker.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await service.Client.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task FinishedJobsAreForgottenOldestFirst()
    {
        await using var service = TestService.Start(new ServeLimits { MaxRetainedJobs = 2 });
        var ids = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var job = await service.Post(new { @class = i, steps = 1 });
            await service.WaitEnd(job.Id);
            ids.Add(job.Id);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await service.Client.GetAsync($"/v1/generations/{ids[0]}")).StatusCode);
        Assert.Equal(GenerationState.Succeeded, (await service.Get(ids[2])).State);
    }
}
