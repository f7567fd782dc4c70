using System.Globalization;
using System.Text;

namespace Halo.Installer.Doctor;

/// <summary>
/// Writes `halo_doctor.prom` for node_exporter's textfile collector: written to a temporary file in the same
/// directory, flushed to disk, then renamed over the old one, so the collector never reads half a file.
/// </summary>
public static class PromTextfile
{
    public const string FileName = "halo_doctor.prom";

    public static string Render(DoctorReport report, DateTimeOffset now)
    {
        var text = new StringBuilder();
        text.Append("# HELP halo_doctor_check_ok 1 when the halo doctor check passed or does not apply here (ok, skip), 0 on warn or fail.\n");
        text.Append("# TYPE halo_doctor_check_ok gauge\n");
        foreach (CheckResult check in report.Checks)
        {
            int ok = check.Status is CheckStatus.Ok or CheckStatus.Skip ? 1 : 0;
            text.Append(CultureInfo.InvariantCulture, $"halo_doctor_check_ok{{check=\"{Escape(check.Id)}\"}} {ok}\n");
        }

        text.Append("# HELP halo_doctor_check_status The status of each halo doctor check: 1 on the series of its current status.\n");
        text.Append("# TYPE halo_doctor_check_status gauge\n");
        foreach (CheckResult check in report.Checks)
        {
            foreach (CheckStatus status in Enum.GetValues<CheckStatus>())
            {
                int on = check.Status == status ? 1 : 0;
                text.Append(CultureInfo.InvariantCulture, $"halo_doctor_check_status{{check=\"{Escape(check.Id)}\",status=\"{DoctorReport.StatusName(status)}\"}} {on}\n");
            }
        }

        text.Append("# HELP halo_doctor_checks Number of halo doctor checks by status.\n");
        text.Append("# TYPE halo_doctor_checks gauge\n");
        foreach (CheckStatus status in Enum.GetValues<CheckStatus>())
        {
            text.Append(CultureInfo.InvariantCulture, $"halo_doctor_checks{{status=\"{DoctorReport.StatusName(status)}\"}} {report.Count(status)}\n");
        }

        text.Append("# HELP halo_doctor_forbidden_runtime_offenders Unit commands that reach an interpreter.\n");
        text.Append("# TYPE halo_doctor_forbidden_runtime_offenders gauge\n");
        int offenders = report[Checks.ForbiddenRuntimeCheck.CheckId]?.Details?["offenders"]?.AsArray().Count ?? 0;
        text.Append(CultureInfo.InvariantCulture, $"halo_doctor_forbidden_runtime_offenders {offenders}\n");

        text.Append("# HELP halo_doctor_exit_code Exit code of the last halo doctor run (0 ok, 1 warnings, 2 failures).\n");
        text.Append("# TYPE halo_doctor_exit_code gauge\n");
        text.Append(CultureInfo.InvariantCulture, $"halo_doctor_exit_code {report.ExitCode}\n");

        text.Append("# HELP halo_doctor_last_run_timestamp_seconds When halo doctor last ran (Unix time).\n");
        text.Append("# TYPE halo_doctor_last_run_timestamp_seconds gauge\n");
        text.Append(CultureInfo.InvariantCulture, $"halo_doctor_last_run_timestamp_seconds {now.ToUnixTimeSeconds()}\n");
        return text.ToString();
    }

    /// <summary>Writes the file atomically into <paramref name="directory"/> and returns its path.</summary>
    public static string Write(string directory, DoctorReport report, DateTimeOffset now)
    {
        Directory.CreateDirectory(directory);
        string target = Path.Combine(directory, FileName);
        // A name the collector ignores (it reads only *.prom), unique per process.
        string temp = Path.Combine(directory, $".{FileName}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                byte[] bytes = Encoding.UTF8.GetBytes(Render(report, now));
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            SystemRoot.SetModeOfHostPath(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.Move(temp, target, overwrite: true);
            return target;
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
