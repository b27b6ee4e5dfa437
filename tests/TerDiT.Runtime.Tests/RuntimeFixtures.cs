namespace TerDiT.Runtime.Tests;

/// <summary>Where the committed test fixtures are: tests/fixtures under the repository root.</summary>
static class RuntimeFixtures
{
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "TerDiT.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root (TerDiT.sln) not found above the test binaries");
        }
    }
}
