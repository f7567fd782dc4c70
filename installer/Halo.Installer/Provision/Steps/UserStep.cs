using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Provision.Steps;

/// <summary>
/// The `halo` system user (no login, home /var/lib/halo) in `render` and `video`. On the live system through
/// groupadd/useradd/usermod; under --root by editing the root's passwd, group, shadow and gshadow, with ids
/// picked the way `useradd --system` does (the highest free id below 1000).
/// </summary>
public sealed class UserStep : IProvisionStep
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(1);

    public Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken)
    {
        var step = new ProvisionStep("user", "halo system user in render and video");
        UserDatabase users = UserDatabase.Read(context.Root);
        string name = HaloUserCheck.UserName;
        foreach (string group in HaloUserCheck.GpuGroups)
        {
            if (users.FindGroup(group) is null)
            {
                step.Actions.Add(context.Live
                    ? Run("groupadd", ["--system", group])
                    : Edit($"add system group {group} to /etc/group", () => AddGroup(context, group, [])));
            }
        }

        PasswdEntry? user = users.FindUser(name);
        if (user is null)
        {
            string nologin = context.Root.FileExists("/usr/sbin/nologin") || !context.Root.FileExists("/usr/bin/nologin") ? "/usr/sbin/nologin" : "/usr/bin/nologin";
            step.Actions.Add(context.Live
                ? Run("useradd", ["--system", "--user-group", "--home-dir", PermissionsCheck.StateDir, "--no-create-home", "--shell", nologin,
                    "--comment", "Halo appliance", "--groups", string.Join(',', HaloUserCheck.GpuGroups), name])
                : Edit($"add system user {name} (home {PermissionsCheck.StateDir}, shell {nologin}) and group {name} to /etc/passwd, /etc/group",
                    () => AddUser(context, name, nologin)));
        }

        var missing = user is null ? [] : HaloUserCheck.GpuGroups.Where(g => !users.IsMember(user, g)).ToList();
        if (user is null && !context.Live)
        {
            missing = [.. HaloUserCheck.GpuGroups];
        }

        if (missing.Count > 0)
        {
            step.Actions.Add(context.Live
                ? Run("usermod", ["--append", "--groups", string.Join(',', missing), name])
                : Edit($"add {name} to {string.Join(", ", missing)} in /etc/group", () => AddMembers(context, name, missing)));
        }

        if (step.Actions.Count == 0)
        {
            step.AlreadyDone = $"{name} (uid {user!.Uid}) is in {string.Join(" and ", HaloUserCheck.GpuGroups)}";
        }

        return Task.FromResult(step);
    }

    private static ProvisionAction Run(string program, string[] arguments) =>
        new(ActionKind.Run, ProvisionContext.Describe(program, arguments), ct => ProvisionContext.RunAsync(program, arguments, CommandTimeout, ct), LiveOnly: true);

    private static ProvisionAction Edit(string description, Action apply) =>
        new(ActionKind.Edit, description, _ =>
        {
            apply();
            return Task.CompletedTask;
        });

    /// <summary>The highest id below 1000 that neither a user nor a group has (useradd --system picks from the top).</summary>
    private static int FreeSystemId(UserDatabase users)
    {
        for (int id = 999; id >= 100; id--)
        {
            if (!users.Users.Any(u => u.Uid == id) && !users.Groups.Any(g => g.Gid == id))
            {
                return id;
            }
        }

        throw new ProvisionException("no free system uid/gid below 1000");
    }

    private static void AddGroup(ProvisionContext context, string group, IReadOnlyList<string> members)
    {
        int gid = FreeSystemId(UserDatabase.Read(context.Root));
        AppendLine(context, "/etc/group", $"{group}:x:{gid}:{string.Join(',', members)}");
        if (context.Root.FileExists("/etc/gshadow"))
        {
            AppendLine(context, "/etc/gshadow", $"{group}:!::{string.Join(',', members)}");
        }
    }

    private static void AddUser(ProvisionContext context, string name, string shell)
    {
        UserDatabase users = UserDatabase.Read(context.Root);
        int id = FreeSystemId(users);
        if (users.FindGroup(name) is null)
        {
            AppendLine(context, "/etc/group", $"{name}:x:{id}:");
            if (context.Root.FileExists("/etc/gshadow"))
            {
                AppendLine(context, "/etc/gshadow", $"{name}:!::");
            }
        }

        int gid = UserDatabase.Read(context.Root).FindGroup(name)!.Gid;
        AppendLine(context, "/etc/passwd", $"{name}:x:{id}:{gid}:Halo appliance:{PermissionsCheck.StateDir}:{shell}");
        if (context.Root.FileExists("/etc/shadow"))
        {
            AppendLine(context, "/etc/shadow", $"{name}:!*:{DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 86400}::::::");
        }
    }

    /// <summary>Adds <paramref name="user"/> to the member list of each group, keeping every other line as it was.</summary>
    private static void AddMembers(ProvisionContext context, string user, IReadOnlyList<string> groups)
    {
        string text = context.Root.ReadText("/etc/group") ?? "";
        var lines = text.Split('\n').ToList();
        for (int i = 0; i < lines.Count; i++)
        {
            string[] f = lines[i].Split(':');
            if (f.Length >= 4 && groups.Contains(f[0]))
            {
                var members = f[3].Split(',', StringSplitOptions.RemoveEmptyEntries).ToList();
                if (!members.Contains(user))
                {
                    members.Add(user);
                }

                f[3] = string.Join(',', members);
                lines[i] = string.Join(':', f);
            }
        }

        context.WriteFile("/etc/group", string.Join('\n', lines), (UnixFileMode)0b110_100_100);
    }

    private static void AppendLine(ProvisionContext context, string file, string line)
    {
        string text = context.Root.ReadText(file) ?? "";
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            text += "\n";
        }

        UnixFileMode mode = context.Root.FileExists(file) ? context.Root.Mode(file) : (UnixFileMode)0b110_100_100;
        context.WriteFile(file, text + line + "\n", mode);
    }
}
