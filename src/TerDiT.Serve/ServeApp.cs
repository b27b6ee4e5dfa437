using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.HostFiltering;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TerDiT.Runtime.Diffusion;
using Microsoft.Extensions.Options;

namespace TerDiT.Serve;

/// <summary>
/// The HTTP service (docs/SERVE.md): the JSON API under <c>/v1</c> over a <see cref="GenerationEngine"/>, its OpenAPI
/// document at <see cref="OpenApiPath"/>, and the page at <c>/</c>. Errors are RFC 7807 problem details; a bad field
/// is named in <c>errors</c>.
/// </summary>
public static class ServeApp
{
    public const string OpenApiPath = "/openapi/v1.json";

    /// <summary>The page loads nothing from elsewhere; images are the service's own PNGs (and the empty data: icon).</summary>
    const string PageSecurityPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

    /// <summary>JSON of the API: snake_case names, enums as their names, unknown request fields refused.</summary>
    public static void ConfigureJson(JsonSerializerOptions o)
    {
        o.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        o.NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals; // "NaN"/"Infinity" reach validation, which names the field
    }

    /// <summary>
    /// Builds the service over <paramref name="engine"/>. <paramref name="loopbackOnly"/> admits only requests whose
    /// Host is localhost, 127.0.0.1 or [::1] (against DNS rebinding); <paramref name="configure"/> may choose the
    /// server (Kestrel's URLs, or a test server).
    /// </summary>
    public static WebApplication Build(GenerationEngine engine, bool loopbackOnly, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Microsoft.Extensions.Hosting", LogLevel.None); // start-up failures reach the caller as exceptions
        builder.Services.ConfigureHttpJsonOptions(o => ConfigureJson(o.SerializerOptions));
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi("v1", o => o.AddDocumentTransformer((doc, _, _) =>
        {
            doc.Info.Title = "TerDiT.NET image generation";
            doc.Info.Description = "Class-conditional image generation with a ternary diffusion transformer (docs/SERVE.md).";
            return Task.CompletedTask;
        }));
        builder.Services.Configure<HostFilteringOptions>(o => o.AllowedHosts = loopbackOnly ? ["localhost", "127.0.0.1", "[::1]"] : ["*"]);
        builder.Services.AddSingleton(engine);
        configure?.Invoke(builder);

        var app = builder.Build();
        app.Lifetime.ApplicationStopping.Register(engine.Dispose); // unfinished jobs end cancelled, so event streams close and stopping is quick
        app.UseHostFiltering();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapOpenApi(OpenApiPath);
        MapApi(app, engine);
        MapPage(app);
        return app;
    }

    static void MapApi(WebApplication app, GenerationEngine engine)
    {
        var api = app.MapGroup("/v1").WithTags("generation");
        var model = engine.Model;
        var info = new ModelInfo(model.Config.Name, model.Config, model.ClassNames, ServedModel.Samplers, model.Denoisers.Keys.ToArray(),
            model.Device, model.Config.InputSize,
            new RequestDefaults(GenerationRequest.DefaultPerClass, SamplerNames.DefaultSteps, SamplerNames.Default, GenerationRequest.DefaultCfg, model.DefaultMode),
            engine.Limits);
        api.MapGet("/model", () => TypedResults.Ok(info))
            .WithSummary("The model: configuration, class names, samplers, modes, defaults and limits.");

        api.MapPost("/generations", Create)
            .Accepts<GenerationRequest>("application/json")
            .Produces<GenerationStatus>(StatusCodes.Status202Accepted)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .WithSummary("Queues a generation; 202 with the job, whose Location is its status.");

        api.MapGet("/generations/{id}", Results<Ok<GenerationStatus>, ProblemHttpResult> (string id) =>
                engine.Find(id) is { } job ? TypedResults.Ok(engine.Status(job)) : NotFound(id))
            .WithSummary("The job's state, progress (step i of n) and, once succeeded, its image links.");

        api.MapGet("/generations/{id}/events", Results<ServerSentEventsResult<GenerationStatus>, ProblemHttpResult> (string id, HttpContext http) =>
                engine.Find(id) is { } job ? TypedResults.ServerSentEvents(Events(engine, job, http.RequestAborted)) : NotFound(id))
            .WithSummary("Server-sent events: 'progress' with the job's status at every step, then one 'done' when it ends. "
                + "Closing the stream before the end cancels the job unless another client still reads its events.");

        api.MapGet("/generations/{id}/image.png", (string id) => Png(engine, id, job => job.GridPng!))
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .WithSummary("The grid: one row per requested class, per_class images in each.");

        api.MapGet("/generations/{id}/images/{index:int}.png", (string id, int index) => Png(engine, id, job =>
                index >= 0 && index < job.ImagePngs!.Length ? job.ImagePngs[index] : null))
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .WithSummary("Image number index of the job (grid order).");

        api.MapDelete("/generations/{id}", Cancel)
            .WithSummary("Cancels a queued or running job; its images leave the batch after the step in progress. 409 once the job has ended.");
    }

    static async Task<IResult> Create(HttpRequest request, GenerationEngine engine, IOptions<JsonOptions> json)
    {
        var limits = engine.Limits;
        if (!request.HasJsonContentType())
            return Problem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "the body must be JSON (Content-Type: application/json)");
        if (request.ContentLength > limits.MaxBodyBytes) return BodyTooLarge(limits);
        var body = new MemoryStream();
        var buffer = new byte[4096];
        for (int read; (read = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0;)
        {
            if (body.Length + read > limits.MaxBodyBytes) return BodyTooLarge(limits);
            body.Write(buffer, 0, read);
        }
        var bytes = body.GetBuffer().AsMemory(0, (int)body.Length);
        GenerationRequest? parsed;
        try
        {
            using (JsonDocument.Parse(bytes)) { } // malformed JSON is the body's fault, not a field's
        }
        catch (JsonException e)
        {
            return Invalid("body", $"the body is not valid JSON: {FirstSentence(e.Message)}");
        }
        try
        {
            parsed = JsonSerializer.Deserialize<GenerationRequest>(bytes.Span, json.Value.SerializerOptions);
        }
        catch (JsonException e)
        {
            return Invalid(FieldOf(e), FirstSentence(e.Message));
        }
        if (parsed is null) return Invalid("body", "the body is null, not a JSON object");
        var settings = parsed.Validate(engine.Model, limits, out var errors, out string? tooLarge);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors, title: "The generation request has invalid fields");
        if (tooLarge != null) return Problem(StatusCodes.Status413PayloadTooLarge, "Too many images", tooLarge);
        if (engine.Submit(settings!) is not { } job)
        {
            request.HttpContext.Response.Headers.RetryAfter = "1"; // seconds: a hint, since a job's duration depends on its settings
            return Problem(StatusCodes.Status429TooManyRequests, "Too many jobs",
                $"{limits.MaxPendingJobs} jobs are queued or running, the most this service accepts; try again when one has finished");
        }
        var status = engine.Status(job);
        return TypedResults.Accepted(status.Links.Self, status);
    }

    static async Task<IResult> Cancel(string id, GenerationEngine engine, HttpContext http)
    {
        if (engine.Find(id) is not { } job) return NotFound(id);
        if (!engine.Cancel(job))
            return Problem(StatusCodes.Status409Conflict, "The job has ended", $"job {id} is {engine.Status(job).State.ToString().ToLowerInvariant()}; only queued or running jobs can be cancelled");
        await job.Finished.WaitAsync(http.RequestAborted);
        return TypedResults.Ok(engine.Status(job));
    }

    static async IAsyncEnumerable<SseItem<GenerationStatus>> Events(GenerationEngine engine, Generation job, [EnumeratorCancellation] CancellationToken aborted)
    {
        engine.Watch(job);
        try
        {
            while (true)
            {
                var (status, changed) = engine.Snapshot(job);
                bool final = status.State is GenerationState.Succeeded or GenerationState.Failed or GenerationState.Cancelled;
                yield return new SseItem<GenerationStatus>(status, final ? "done" : "progress");
                if (final) yield break;
                await changed.WaitAsync(aborted);
            }
        }
        finally { engine.Unwatch(job, aborted.IsCancellationRequested); }
    }

    static IResult Png(GenerationEngine engine, string id, Func<Generation, byte[]?> pick)
    {
        if (engine.Find(id) is not { } job) return NotFound(id);
        var state = engine.Status(job).State;
        if (state != GenerationState.Succeeded)
            return Problem(StatusCodes.Status409Conflict, "No images", $"job {id} is {state.ToString().ToLowerInvariant()}; images exist once it has succeeded");
        return pick(job) is { } png ? TypedResults.Bytes(png, "image/png") : Problem(StatusCodes.Status404NotFound, "No such image", $"job {id} has {job.Settings.Images} images, numbered from 0");
    }

    static void MapPage(WebApplication app)
    {
        foreach (var (path, file, type) in new[]
                 {
                     ("/", "index.html", "text/html; charset=utf-8"), ("/app.js", "app.js", "text/javascript; charset=utf-8"),
                     ("/app.css", "app.css", "text/css; charset=utf-8"),
                 })
        {
            using var stream = typeof(ServeApp).Assembly.GetManifestResourceStream("page/" + file)
                ?? throw new InvalidOperationException($"the page's {file} is missing from the assembly");
            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            app.MapGet(path, (HttpContext http) =>
            {
                http.Response.Headers.ContentSecurityPolicy = PageSecurityPolicy;
                http.Response.Headers.XContentTypeOptions = "nosniff";
                return TypedResults.Bytes(bytes, type);
            }).ExcludeFromDescription();
        }
    }

    static IResult Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: "The body is not a valid generation request");

    static ProblemHttpResult NotFound(string id) => Problem(StatusCodes.Status404NotFound, "No such job", $"no job {id} (finished jobs are forgotten oldest first)");

    static IResult BodyTooLarge(ServeLimits limits) =>
        Problem(StatusCodes.Status413PayloadTooLarge, "Body too large", $"the body is larger than {limits.MaxBodyBytes} bytes");

    static ProblemHttpResult Problem(int status, string title, string detail) => TypedResults.Problem(detail, statusCode: status, title: title);

    /// <summary>The request field a JSON error is at: "$.steps" → "steps", "$.classes[2]" → "classes[2]", else "body".</summary>
    static string FieldOf(JsonException e) => e.Path is { Length: > 2 } path && path.StartsWith("$.") ? path[2..] : "body";

    static string FirstSentence(string message) => message.Split(". Path:")[0];
}
