using System.Security.Cryptography;
using TerDiT.Runtime.Imaging;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Serve;

/// <summary>
/// Runs generation jobs on one model with continuous batching: every image of every running job is a
/// <see cref="SamplingRun"/>, and each forward pass carries the next step of up to <see cref="ServeLimits.BatchImages"/>
/// images, whatever their jobs' steps, sampler or guidance (the model gets a timestep per row). A job's images join
/// the passes as soon as there is room, in the order the jobs came, and leave when done or when their job is cancelled;
/// the other images in those passes are not touched, and since the forward computes each row on its own, a job's
/// images are the same bytes whatever they were batched with. Images of different modes (exact, a8) never share a
/// pass: another mode waits until the images in flight are done (see <see cref="NextBatch"/>). One worker thread makes
/// every model call.
/// </summary>
public sealed class GenerationEngine : IDisposable
{
    readonly ServedModel _model;
    readonly ServeLimits _limits;
    readonly Dictionary<string, DiffusionSampler> _samplers;
    readonly object _gate = new();
    readonly Dictionary<string, Generation> _jobs = [];
    readonly List<Generation> _unfinished = [];     // in order of arrival
    readonly Queue<Generation> _finished = new();   // the retained finished jobs, oldest first
    readonly List<ImageRun> _active = [];
    readonly Thread _worker;
    bool _stopping;
    float[] _x = [], _out = [];
    int[] _t = [], _y = [];

    sealed record ImageRun(Generation Job, int Image, SamplingRun Run);

    public GenerationEngine(ServedModel model, ServeLimits limits)
    {
        (_model, _limits) = (model, limits.Validate());
        _samplers = model.Denoisers.Keys.ToDictionary(m => m, model.Sampler);
        _worker = new Thread(Work) { IsBackground = true, Name = "terdit-generation" };
        _worker.Start();
    }

    public ServedModel Model => _model;
    public ServeLimits Limits => _limits;

    /// <summary>Accepts a job, or returns null when <see cref="ServeLimits.MaxPendingJobs"/> jobs are already unfinished.</summary>
    internal Generation? Submit(GenerationSettings settings)
    {
        lock (_gate)
        {
            if (_stopping) throw new ObjectDisposedException(nameof(GenerationEngine));
            if (_unfinished.Count >= _limits.MaxPendingJobs) return null;
            var job = new Generation(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), settings, DateTimeOffset.UtcNow);
            _jobs.Add(job.Id, job);
            _unfinished.Add(job);
            Monitor.PulseAll(_gate);
            return job;
        }
    }

    internal Generation? Find(string id)
    {
        lock (_gate) return _jobs.GetValueOrDefault(id);
    }

    /// <summary>
    /// Asks a job to stop: queued, it ends cancelled at once; running, its images leave after the forward pass in
    /// progress. Returns false when the job had already ended.
    /// </summary>
    internal bool Cancel(Generation job)
    {
        lock (_gate)
        {
            if (job.IsFinal) return false;
            job.CancelRequested = true;
            if (job.Active == 0) End(job, GenerationState.Cancelled);
            return true;
        }
    }

    /// <summary>A client starts reading the job's events.</summary>
    internal void Watch(Generation job)
    {
        lock (_gate) job.Watchers++;
    }

    /// <summary>A client stops reading; when the last one went away (<paramref name="disconnected"/>) before the end, the job is cancelled.</summary>
    internal void Unwatch(Generation job, bool disconnected)
    {
        bool abandon;
        lock (_gate) abandon = --job.Watchers == 0 && disconnected && !job.IsFinal;
        if (abandon) Cancel(job);
    }

    /// <summary>The job as the API shows it, read under the lock.</summary>
    internal GenerationStatus Status(Generation job)
    {
        return Snapshot(job).Status;
    }

    /// <summary>The job's status and a task that completes at its next change, read together.</summary>
    internal (GenerationStatus Status, Task Changed) Snapshot(Generation job)
    {
        lock (_gate) return (GenerationStatus.Of(job, _model, job.State == GenerationState.Queued ? _unfinished.IndexOf(job) : null), job.Changed);
    }

    void Work()
    {
        while (true)
        {
            List<ImageRun> batch;
            string mode;
            lock (_gate)
            {
                while (true)
                {
                    if (_stopping) return;
                    DropCancelled();
                    (batch, mode) = NextBatch();
                    if (batch.Count > 0) break;
                    Monitor.Wait(_gate);
                }
            }
            Exception? failure = null;
            try { Forward(batch, mode); }
            catch (Exception e) { failure = e; }
            lock (_gate) Record(batch, failure);
        }
    }

    /// <summary>Images of cancelled jobs leave the passes; a cancelled job with no image left in them ends.</summary>
    void DropCancelled()
    {
        for (int i = _active.Count - 1; i >= 0; i--)
            if (_active[i].Job.CancelRequested)
            {
                _active[i].Job.Active--;
                _active.RemoveAt(i);
            }
        foreach (var job in _unfinished.Where(j => j.CancelRequested && j.Active == 0).ToList()) End(job, GenerationState.Cancelled);
    }

    /// <summary>
    /// The images of the next pass: those in flight (all of one mode), topped up in order of arrival with queued images
    /// of that mode while it is the oldest unfinished job's mode. Another mode waits for the images in flight to finish,
    /// then takes over, so no job waits behind later ones.
    /// </summary>
    (List<ImageRun>, string) NextBatch()
    {
        if (_unfinished.Count == 0) return ([], "");
        string oldest = _unfinished[0].Settings.Mode, mode = _active.Count > 0 ? _active[0].Job.Settings.Mode : oldest;
        var batch = _active.ToList();
        if (mode != oldest) return (batch, mode);
        int running = _active.Select(r => r.Job).Distinct().Count();
        foreach (var job in _unfinished)
        {
            if (batch.Count >= _limits.BatchImages) break;
            var s = job.Settings;
            if (s.Mode != mode || job.Admitted == s.Images) continue;
            if (job.Active == 0)
            {
                if (running >= _limits.MaxRunningJobs) break;
                running++;
            }
            while (batch.Count < _limits.BatchImages && job.Admitted < s.Images)
            {
                int k = job.Admitted++;
                var run = new ImageRun(job, k, _samplers[mode].Start([s.LabelOf(k)], [new ImageNoise(s.Seed, k)],
                    SamplerNames.Find(s.Sampler)!.Value, s.Steps, s.Cfg));
                batch.Add(run);
                _active.Add(run);
                job.Active++;
            }
            if (job.State == GenerationState.Queued)
            {
                (job.State, job.Started) = (GenerationState.Running, DateTimeOffset.UtcNow);
                job.Notify();
            }
        }
        return (batch, mode);
    }

    /// <summary>One model call for the next step of every image of the batch (outside the lock: only this thread touches the runs).</summary>
    void Forward(List<ImageRun> batch, string mode)
    {
        var c = _model.Config;
        int per = c.InChannels * c.InputSize * c.InputSize, outPer = c.OutChannels * c.InputSize * c.InputSize;
        int rows = batch.Sum(r => r.Run.ModelRows), row = 0;
        if (_t.Length < rows) (_x, _out, _t, _y) = (new float[rows * per], new float[rows * outPer], new int[rows], new int[rows]);
        foreach (var r in batch)
        {
            int n = r.Run.ModelRows;
            r.Run.WriteModelInput(_x.AsSpan(row * per, n * per), _t.AsSpan(row, n), _y.AsSpan(row, n));
            row += n;
        }
        _model.Denoisers[mode](_x.AsSpan(0, rows * per), _t.AsSpan(0, rows), _y.AsSpan(0, rows), _out.AsSpan(0, rows * outPer));
        row = 0;
        foreach (var r in batch)
        {
            int n = r.Run.ModelRows;
            r.Run.Advance(_out.AsSpan(row * outPer, n * outPer));
            row += n;
        }
    }

    /// <summary>Progress, finished images and finished jobs after a pass; a failed pass fails every job in it.</summary>
    void Record(List<ImageRun> batch, Exception? failure)
    {
        var c = _model.Config;
        int per = c.InChannels * c.InputSize * c.InputSize;
        foreach (var r in batch)
        {
            var job = r.Job;
            if (failure != null || job.CancelRequested) continue;
            job.ImageSteps++;
            if (!r.Run.IsComplete) continue;
            job.Pixels ??= new byte[job.Settings.Images * per];
            PngGrid.ToPixels(r.Run.Result).CopyTo(job.Pixels, r.Image * per);
            job.ImagesDone++;
            job.Active--;
            _active.Remove(r);
        }
        foreach (var job in batch.Select(r => r.Job).Distinct())
        {
            if (failure != null && !job.IsFinal)
            {
                _active.RemoveAll(r => r.Job == job);
                job.Active = 0;
                job.Error = failure.Message;
                End(job, GenerationState.Failed);
            }
            else if (!job.CancelRequested && job.ImagesDone == job.Settings.Images)
            {
                Encode(job);
                End(job, GenerationState.Succeeded);
            }
            else job.Notify();
        }
    }

    /// <summary>The grid (one row per requested class) and one PNG per image.</summary>
    void Encode(Generation job)
    {
        var (c, s) = (_model.Config, job.Settings);
        int per = c.InChannels * c.InputSize * c.InputSize;
        job.GridPng = PngGrid.Encode(job.Pixels, s.Images, c.InChannels, c.InputSize, c.InputSize, s.Classes.Length, s.PerClass);
        job.ImagePngs = Enumerable.Range(0, s.Images)
            .Select(k => PngGrid.Encode(job.Pixels.AsSpan(k * per, per), 1, c.InChannels, c.InputSize, c.InputSize, 1, 1)).ToArray();
        job.Pixels = null;
    }

    void End(Generation job, GenerationState state)
    {
        (job.State, job.Ended) = (state, DateTimeOffset.UtcNow);
        _unfinished.Remove(job);
        _finished.Enqueue(job);
        while (_finished.Count > _limits.MaxRetainedJobs) _jobs.Remove(_finished.Dequeue().Id);
        job.Notify();
    }

    /// <summary>Stops the worker after the pass in progress; unfinished jobs end cancelled.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        _worker.Join();
        lock (_gate)
            foreach (var job in _unfinished.ToList())
            {
                job.CancelRequested = true;
                End(job, GenerationState.Cancelled);
            }
    }
}
