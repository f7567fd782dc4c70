using System.Diagnostics;
using System.Net;
using System.Text;
using Halo.Reliability.Tests.Fuzzing;
using Halo.Reliability.Tests.Infrastructure;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using Xunit.Abstractions;

namespace Halo.Reliability.Tests.Faults;

/// <summary>SIGTERM with eight streams in flight (four generating, four queued for the four slots): STOPPING=1
/// on the test's own NOTIFY_SOCKET, every stream finished or cut at an event boundary, exit 0 in time.</summary>
public sealed class SigtermDrainTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(2.0, 400)]   // drain shorter than the streams: they are cut
    [InlineData(30.0, 24)]   // drain long enough: they finish
    public async Task Sigterm_EightStreamsInFlight_StoppingSentStreamsEndCleanlyExitZero(double drainSeconds, int maxTokens)
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        using var daemon = new ServedDaemon(new Dictionary<string, string>
        {
            ["HALO_SERVER_DRAIN_TIMEOUT_SECONDS"] = drainSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }, notify.Path);
        notify.WaitFor("READY=1", TimeSpan.FromSeconds(60));

        Task<(int Status, string Body)>[] streams = Enumerable.Range(0, 8).Select(i => Stream(daemon.Client, maxTokens, i)).ToArray();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await daemon.MetricAsync("halo_requests_running") < 4 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        var clock = Stopwatch.StartNew();
        daemon.Process.Signal(DaemonProcess.SigTerm);
        int exit = daemon.Process.WaitForExit(TimeSpan.FromSeconds(drainSeconds + 20));
        TimeSpan stoppedAfter = clock.Elapsed;
        notify.WaitFor("STOPPING=1", TimeSpan.FromSeconds(5));
        (int Status, string Body)[] results = await Task.WhenAll(streams);

        int finished = results.Count(r => r.Status == 200 && r.Body.Contains("\"finish_reason\":\"", StringComparison.Ordinal));
        output.WriteLine($"drain {drainSeconds} s, {maxTokens} tokens each: exit {exit} after {stoppedAfter.TotalSeconds:F1} s; " +
            $"statuses {string.Join(",", results.Select(r => r.Status))}; {finished} of 8 reached a finish_reason");
        Assert.Equal(0, exit);
        Assert.True(stoppedAfter < TimeSpan.FromSeconds(drainSeconds + 10), $"exit took {stoppedAfter}");
        foreach ((int status, string body) in results)
        {
            // A stream ends with [DONE] and holds no half-written event; a request never started is a clean
            // 503 or a closed connection (status 0), never a torn 200.
            Assert.True(status is 200 or 503 or 0, $"status {status}: {body}");
            if (status == 200)
            {
                Assert.Null(HttpFuzzTests.SseShape(body));
            }
        }

        if (drainSeconds >= 30)
        {
            Assert.True(results.Count(r => r.Status == 200) == finished, "with a long drain every started stream finishes");
        }
    }

    private static async Task<(int, string)> Stream(HttpClient client, int maxTokens, int seed)
    {
        string json = $$"""{"messages":[{"role":"user","content":"count {{seed}}"}],"max_tokens":{{maxTokens}},"stream":true,"seed":{{seed}}}""";
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            using HttpResponseMessage response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException)
        {
            return (0, "");
        }
        catch (IOException)
        {
            return (0, "");
        }
    }
}
