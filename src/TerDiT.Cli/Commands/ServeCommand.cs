using System.CommandLine;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using TerDiT.Runtime.Cuda;
using TerDiT.Serve;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit serve</c>: the image-generation service and its page (docs/SERVE.md) on a packed model, until Ctrl+C.
/// Loopback by default; any other address gets a warning, since the service has no authentication. No TorchSharp type
/// here: the service runs on the pure-C# runtime, on the CPU or (<c>--device cuda</c>) the CUDA backend.
/// </summary>
static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = $"a packed .tdit model (default: the shipped {ShippedModel.FileName})" };
        var device = DeviceOption.Create();
        var mode = RuntimeModeOption.Create();
        mode.Description = "activation mode of requests that name none: exact (fp32) or a8 (int8); requests may choose either";
        var host = new Option<string>("--host") { Description = "address to listen on (other than loopback: reachable from other machines, with no authentication)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free port)", DefaultValueFactory = _ => 8080 };
        var threads = ThreadsOption.Create();
        var defaults = new ServeLimits();
        Option<int> Limit(string name, string description, int value) => new(name) { Description = description, DefaultValueFactory = _ => value };
        var batch = Limit("--batch", "most images in one forward pass (a guided image takes two rows)", defaults.BatchImages);
        var maxRunning = Limit("--max-running", "most requests sharing the forward passes at once (1: one at a time; default: no limit)", defaults.MaxRunningJobs);
        var maxPending = Limit("--max-pending", "most queued or running requests; more get 429", defaults.MaxPendingJobs);
        var maxRetained = Limit("--max-retained", "finished requests kept with their images (oldest forgotten first)", defaults.MaxRetainedJobs);
        var maxImages = Limit("--max-images", "most images per request; more get 413", defaults.MaxImagesPerRequest);
        var maxSteps = Limit("--max-steps", "most sampling steps per request (≤ 1000); more get 400", defaults.MaxSteps);
        var maxBody = Limit("--max-body", "largest request body in bytes; larger get 413", defaults.MaxBodyBytes);

        var command = new Command("serve", "Serve image generation over HTTP (JSON API, server-sent progress, OpenAPI) with a web page, until Ctrl+C.");
        foreach (var o in new Option[] { model, device, mode, host, port, threads, batch, maxRunning, maxPending, maxRetained, maxImages, maxSteps, maxBody }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            if (p.GetValue(threads) is <= 0) throw new ArgumentException($"--threads must be positive, not {p.GetValue(threads)}");
            int listenPort = p.GetValue(port);
            if (listenPort is < 0 or > 65535) throw new ArgumentException($"--port must be in 0..65535, not {listenPort}");
            var limits = new ServeLimits
            {
                BatchImages = p.GetValue(batch), MaxRunningJobs = p.GetValue(maxRunning), MaxPendingJobs = p.GetValue(maxPending),
                MaxRetainedJobs = p.GetValue(maxRetained), MaxImagesPerRequest = p.GetValue(maxImages), MaxSteps = p.GetValue(maxSteps),
                MaxBodyBytes = p.GetValue(maxBody),
            }.Validate();
            string address = p.GetValue(host)!;
            bool loopback = IsLoopback(address);
            if (!loopback)
                p.InvocationConfiguration.Error.WriteLine($"terdit: warning: listening on {address}, reachable from other machines: the service has no authentication");
            string path = p.GetValue(model) ?? ShippedModel.Find();

            var defaultMode = RuntimeModeOption.Resolve(p.GetValue(mode)!);
            using var served = p.GetValue(device) == "cuda"
                ? ServedModel.Load(path, "cuda", defaultMode, (weights, m) => new CudaModel(weights, new CudaOptions { Mode = m }))
                : ServedModel.LoadCpu(path, defaultMode, p.GetValue(threads));
            using var engine = new GenerationEngine(served, limits);
            var app = ServeApp.Build(engine, loopback, b => b.WebHost.UseUrls($"http://{UrlHost(address)}:{listenPort}"));
            app.StartAsync().GetAwaiter().GetResult();
            stdout.WriteLine($"terdit serve: {string.Join(", ", app.Urls)}/ ({path}, {served.Config.Name}, {served.Device}, default mode {served.DefaultMode}); Ctrl+C stops");
            app.WaitForShutdownAsync().GetAwaiter().GetResult();
            return 0;
        }));
        return command;
    }

    /// <summary>localhost or a loopback IP address.</summary>
    static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>The host as a URL writes it: IPv6 addresses in brackets.</summary>
    static string UrlHost(string host) =>
        IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : host;
}
