using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;
using TerDiT.Runtime.Cpu;
using Xunit;

namespace TerDiT.Serve.Tests;

/// <summary>
/// The page in a real headless Chromium (Debian's <c>chromium</c>, driven by Playwright; nothing is downloaded) against
/// the service on Kestrel with the shipped TerDiT-S model: pick a class, generate, watch the progress bar move and the
/// grid appear, and save a screenshot for the README (docs/serve-page.png).
/// </summary>
public class BrowserTests
{
    const string Chromium = "/usr/bin/chromium";

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "TerDiT.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("TerDiT.sln not found above the test binaries");
    }

    [SkippableFact]
    public async Task PageGeneratesWithLiveProgressInChromium()
    {
        Skip.IfNot(File.Exists(Chromium), $"{Chromium} is not installed (apt-get install chromium; .ci/run installs it)");
        string modelPath = Path.Combine(AppContext.BaseDirectory, "models", "terdit-s-fmnist.tdit");
        using var model = ServedModel.LoadCpu(modelPath, GemmMode.A8);
        using var engine = new GenerationEngine(model, new ServeLimits());
        await using var app = ServeApp.Build(engine, loopbackOnly: true, b => b.WebHost.UseUrls("http://127.0.0.1:0"));
        await app.StartAsync();
        string url = app.Urls.First();

        using var playwright = await Playwright.CreateAsync();
        string profile = Directory.CreateTempSubdirectory("terdit-chromium-").FullName;
        try
        {
            await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(profile, new()
            {
                ExecutablePath = Chromium, Headless = true, ChromiumSandbox = false,
                Args = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage"],
                ViewportSize = new() { Width = 1000, Height = 620 },
            });
            var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
            var requests = new List<string>();
            page.Request += (_, r) => requests.Add(r.Url);
            var consoleErrors = new List<string>();
            page.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };

            await page.GotoAsync(url);
            await page.WaitForFunctionAsync("() => document.getElementById('class').options.length === 10");
            Assert.Contains("TerDiT-S", await page.TextContentAsync("#model"));
            await page.SelectOptionAsync("#class", new SelectOptionValue { Label = "Sneaker" });
            await page.FillAsync("#per-class", "6");
            await page.FillAsync("#steps", "12");
            await page.FillAsync("#seed", "3");
            await page.ClickAsync("#generate");

            // The bar moves: sample it until the grid is there; it must show steps strictly between 0 and the end.
            var seen = new SortedSet<double>();
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while (!await page.EvaluateAsync<bool>("() => { const i = document.getElementById('result'); return !document.getElementById('figure').hidden && i.complete && i.naturalWidth > 0; }"))
            {
                Assert.True(DateTime.UtcNow < deadline, "no image after 3 minutes");
                seen.Add(await page.EvaluateAsync<double>("() => document.getElementById('progress').value"));
                await Task.Delay(20);
            }
            Assert.True(seen.Count(v => v is > 0 and < 12) >= 2, $"the progress bar showed only {string.Join(", ", seen)}");
            Assert.Equal(12, await page.EvaluateAsync<double>("() => document.getElementById('progress').value"));

            Assert.Equal(6 * 34 + 2, await page.EvaluateAsync<int>("() => document.getElementById('result').naturalWidth")); // 6 cells of 32 px, 2 px borders
            string href = (await page.GetAttributeAsync("#download", "href"))!;
            Assert.Matches("^/v1/generations/[0-9a-f]{32}/image.png$", href);
            Assert.EndsWith(".png", await page.GetAttributeAsync("#download", "download"));
            Assert.Equal(1, await page.Locator("#history li").CountAsync());
            Assert.Contains("Sneaker", await page.TextContentAsync("#history li"));
            Assert.StartsWith("done", await page.TextContentAsync("#status"));
            Assert.All(requests, r => Assert.StartsWith(url, r));   // nothing from the network
            Assert.True(consoleErrors.Count == 0, string.Join("\n", consoleErrors));

            // The random button draws a seed; a second generation (another class) for the history, then the screenshot.
            await page.ClickAsync("#random-seed");
            Assert.NotEqual("3", await page.InputValueAsync("#seed"));
            await page.SelectOptionAsync("#class", new SelectOptionValue { Label = "Trouser" });
            await page.FillAsync("#seed", "1");
            await page.ClickAsync("#generate");
            await page.WaitForFunctionAsync("() => document.querySelectorAll('#history li').length === 2", null, new() { Timeout = 180_000 });
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)");
            await page.ScreenshotAsync(new() { Path = Path.Combine(RepositoryRoot(), "docs", "serve-page.png"), FullPage = true });
        }
        finally { Directory.Delete(profile, recursive: true); }
    }
}
