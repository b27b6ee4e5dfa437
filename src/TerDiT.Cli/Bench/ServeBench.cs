using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using TerDiT.Cli.Commands;
using TerDiT.Runtime.Cpu;
using TerDiT.Serve;
using TerDiT.Runtime;

namespace TerDiT.Cli.Bench;

/// <summary>
/// <c>terdit bench serve</c>: a bounded load test of the service on loopback. Clients send a fixed number of one-image
/// requests, follow each through its events and fetch its PNG; a 429 is counted and the request sent again after its Retry-After.
/// The service batches requests (<c>batched</c>) or runs them one at a time (<c>--max-running 1</c>, <c>sequential</c>),
/// the two taking turns in rounds on a fresh service each time. Reports per mode: p50/p99 latency (POST to PNG),
/// images/s, refusals, and that every accepted job succeeded and gave the same PNG in both modes.
/// </summary>
static class ServeBench
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = $"packed model (default: the shipped {ShippedModel.FileName})" };
        var mode = RuntimeModeOption.Create();
        var requests = new Option<int>("--requests") { Description = "requests per mode and round", DefaultValueFactory = _ => 64 };
        var clients = new Option<int>("--clients") { Description = "concurrent clients", DefaultValueFactory = _ => 16 };
        var steps = new Option<int>("--steps") { Description = "sampling steps per request", DefaultValueFactory = _ => 10 };
        var rounds = new Option<int>("--rounds") { Description = "alternations of the two modes", DefaultValueFactory = _ => 2 };
        var batch = new Option<int>("--batch") { Description = "images per forward pass", DefaultValueFactory = _ => new ServeLimits().BatchImages };
        var maxPending = new Option<int>("--max-pending") { Description = "the service's limit of unfinished jobs (below --clients, some requests are refused and retried)", DefaultValueFactory = _ => 12 };
        var threads = ThreadsOption.Create();
        var output = new Option<string>("--out") { Description = "JSON results file", DefaultValueFactory = _ => "bench/results/serve-cpu.json" };
        var command = new Command("serve", "Load-test terdit serve on loopback: batched vs one request at a time.");
        foreach (var o in new Option[] { model, mode, requests, clients, steps, rounds, batch, maxPending, threads, output }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            int n = p.GetValue(requests), c = p.GetValue(clients), r = p.GetValue(rounds);
            if (n < 1 || c < 1 || r < 1) throw new ArgumentException("--requests, --clients and --rounds must be positive");
            string path = p.GetValue(model) ?? ShippedModel.Find();
            using var served = ServedModel.LoadCpu(path, RuntimeModeOption.Resolve(p.GetValue(mode)!), p.GetValue(threads));
            var settings = new Settings(n, c, p.GetValue(steps), p.GetValue(batch), p.GetValue(maxPending));
            Run(stdout, served, path, settings, r, p.GetValue(output)!);
            return 0;
        }));
        return command;
    }

    sealed record Settings(int Requests, int Clients, int Steps, int Batch, int MaxPending);

    sealed record Outcome(double Seconds, double[] Latencies, int Refusals, int Succeeded, byte[][] Pngs);

    static void Run(TextWriter stdout, ServedModel served, string path, Settings s, int rounds, string outPath)
    {
        string load0 = BenchMachine.LoadAverage() ?? "unknown";
        var modes = new[] { "batched", "sequential" };
        var outcomes = modes.ToDictionary(m => m, _ => new List<Outcome>());
        for (int round = 0; round < rounds; round++)
            foreach (var m in round % 2 == 0 ? modes : modes.Reverse())
            {
                var limits = new ServeLimits { BatchImages = s.Batch, MaxPendingJobs = s.MaxPending, MaxRunningJobs = m == "batched" ? int.MaxValue : 1 };
                var outcome = Load(served, limits, s);
                outcomes[m].Add(outcome);
                stdout.WriteLine($"round {round + 1} {m}: {outcome.Seconds:F1} s, {s.Requests / outcome.Seconds:F2} images/s, "
                    + $"p50 {Percentile(outcome.Latencies, 0.5):F2} s, p99 {Percentile(outcome.Latencies, 0.99):F2} s, {outcome.Refusals} refusals, {outcome.Succeeded}/{s.Requests} succeeded");
            }
        var all = outcomes.Values.SelectMany(o => o).ToList();
        bool identical = all.All(o => o.Pngs.Zip(all[0].Pngs).All(pair => pair.First.AsSpan().SequenceEqual(pair.Second)));
        bool noneLost = all.All(o => o.Succeeded == s.Requests);
        JsonObject Summary(List<Outcome> list)
        {
            var latencies = list.SelectMany(o => o.Latencies).ToArray();
            double seconds = list.Sum(o => o.Seconds);
            return new JsonObject
            {
                ["p50_latency_s"] = Math.Round(Percentile(latencies, 0.5), 3),
                ["p99_latency_s"] = Math.Round(Percentile(latencies, 0.99), 3),
                ["images_per_s"] = Math.Round(list.Count * s.Requests / seconds, 3),
                ["wall_s_per_round"] = new JsonArray(list.Select(o => (JsonNode)Math.Round(o.Seconds, 2)).ToArray()),
                ["images_per_s_per_round"] = new JsonArray(list.Select(o => (JsonNode)Math.Round(s.Requests / o.Seconds, 3)).ToArray()),
                ["refusals_429"] = list.Sum(o => o.Refusals),
                ["succeeded"] = list.Sum(o => o.Succeeded),
            };
        }
        var batched = Summary(outcomes["batched"]);
        var sequential = Summary(outcomes["sequential"]);
        double speedup = (double)batched["images_per_s"]! / (double)sequential["images_per_s"]!;
        stdout.WriteLine($"batched {batched["images_per_s"]} images/s vs one at a time {sequential["images_per_s"]}: {speedup:F2}×; "
            + $"every accepted job succeeded: {noneLost}; same PNGs in every run: {identical}");
        var doc = new JsonObject
        {
            ["benchmark"] = "terdit serve under load on loopback: continuous batching vs one request at a time",
            ["command"] = "terdit " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["machine"] = BenchMachine.Describe(),
            ["load_average_start"] = load0,
            ["load_average_end"] = BenchMachine.LoadAverage(),
            ["model"] = Path.GetFileName(path), ["preset"] = served.Config.Name, ["mode"] = served.DefaultMode,
            ["requests"] = s.Requests, ["clients"] = s.Clients, ["steps"] = s.Steps, ["batch_images"] = s.Batch, ["max_pending"] = s.MaxPending, ["rounds"] = rounds,
            ["method"] = "per mode and round a fresh service on 127.0.0.1 (Kestrel, this process); each client takes the next request "
                + "(one image of class k mod classes, seed k, ddim, cfg 1.5), POSTs it, reads its server-sent events to the end and GETs its PNG; "
                + "latency = first POST sent to PNG received; a 429 counts as a refusal and the request is sent again after its Retry-After (1 s); "
                + "sequential = --max-running 1 (one request's images in the forward passes at a time); the modes alternate, their order swapped each round",
            ["batched"] = batched,
            ["sequential"] = sequential,
            ["speedup_images_per_s"] = Math.Round(speedup, 3),
            ["every_accepted_job_succeeded"] = noneLost,
            ["identical_pngs_across_runs"] = identical,
        };
        AtomicFile.WriteAllText(outPath, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        stdout.WriteLine($"results: {outPath}");
        if (!noneLost || !identical) throw new InvalidOperationException("the load test lost a job or got different images for the same request");
    }

    /// <summary>One load run against a fresh service.</summary>
    static Outcome Load(ServedModel served, ServeLimits limits, Settings s)
    {
        using var engine = new GenerationEngine(served, limits);
        var app = ServeApp.Build(engine, loopbackOnly: true, b => b.WebHost.UseUrls("http://127.0.0.1:0"));
        app.StartAsync().GetAwaiter().GetResult();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(10) };
            var json = new JsonSerializerOptions();
            ServeApp.ConfigureJson(json);
            var latencies = new double[s.Requests];
            var pngs = new byte[s.Requests][];
            int next = -1, refusals = 0, succeeded = 0, classes = served.Config.NumClasses;
            long start = Stopwatch.GetTimestamp();
            var clients = Enumerable.Range(0, s.Clients).Select(_ => Task.Run(async () =>
            {
                for (int k; (k = Interlocked.Increment(ref next)) < s.Requests;)
                {
                    long sent = Stopwatch.GetTimestamp();
                    HttpResponseMessage response;
                    while ((response = await http.PostAsJsonAsync("/v1/generations", new { @class = k % classes, steps = s.Steps, sampler = "ddim", seed = k, cfg = 1.5 })).StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        Interlocked.Increment(ref refusals);
                        await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1));
                    }
                    if (response.StatusCode != HttpStatusCode.Accepted) throw new InvalidOperationException($"request {k}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                    var job = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
                    string self = (string)job["links"]!["self"]!;
                    using var events = await http.GetAsync(self + "/events", HttpCompletionOption.ResponseHeadersRead);
                    string? state = null;
                    await foreach (var item in SseParser.Create(await events.Content.ReadAsStreamAsync()).EnumerateAsync())
                        if (item.EventType == "done") state = (string?)JsonNode.Parse(item.Data)!["state"];
                    if (state != "succeeded") continue;                   // counted as lost below
                    pngs[k] = await http.GetByteArrayAsync(self + "/image.png");
                    latencies[k] = Stopwatch.GetElapsedTime(sent).TotalSeconds;
                    Interlocked.Increment(ref succeeded);
                }
            })).ToArray();
            Task.WaitAll(clients);
            return new Outcome(Stopwatch.GetElapsedTime(start).TotalSeconds, latencies.Where((_, k) => pngs[k] != null).ToArray(), refusals, succeeded, pngs);
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
            ((IDisposable)app).Dispose();
        }
    }

    /// <summary>The q-quantile by the nearest-rank rule (p99 of 128 values is the 127th smallest).</summary>
    static double Percentile(double[] values, double q)
    {
        if (values.Length == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}
