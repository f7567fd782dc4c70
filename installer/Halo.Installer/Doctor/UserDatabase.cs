namespace Halo.Installer.Doctor;

public sealed record PasswdEntry(string Name, int Uid, int Gid, string Home, string Shell);

public sealed record GroupEntry(string Name, int Gid, IReadOnlyList<string> Members);

/// <summary>/etc/passwd and /etc/group inside a root (doctor reads them; provision edits them under --root).</summary>
public sealed class UserDatabase
{
    private UserDatabase(IReadOnlyList<PasswdEntry> users, IReadOnlyList<GroupEntry> groups)
    {
        Users = users;
        Groups = groups;
    }

    public IReadOnlyList<PasswdEntry> Users { get; }

    public IReadOnlyList<GroupEntry> Groups { get; }

    public static UserDatabase Read(SystemRoot root) =>
        new(ParsePasswd(root.ReadText("/etc/passwd") ?? ""), ParseGroups(root.ReadText("/etc/group") ?? ""));

    public PasswdEntry? FindUser(string name) => Users.FirstOrDefault(u => u.Name == name);

    public GroupEntry? FindGroup(string name) => Groups.FirstOrDefault(g => g.Name == name);

    /// <summary>Member through the group's member list or as the user's primary group.</summary>
    public bool IsMember(PasswdEntry user, string group) =>
        FindGroup(group) is { } entry && (entry.Gid == user.Gid || entry.Members.Contains(user.Name));

    public static List<PasswdEntry> ParsePasswd(string text)
    {
        var users = new List<PasswdEntry>();
        foreach (string line in text.Split('\n'))
        {
            string[] f = line.Trim().Split(':');
            if (f.Length >= 7 && int.TryParse(f[2], out int uid) && int.TryParse(f[3], out int gid))
            {
                users.Add(new PasswdEntry(f[0], uid, gid, f[5], f[6]));
            }
        }

        return users;
    }

    public static List<GroupEntry> ParseGroups(string text)
    {
        var groups = new List<GroupEntry>();
        foreach (string line in text.Split('\n'))
        {
            string[] f = line.Trim().Split(':');
            if (f.Length >= 4 && int.TryParse(f[2], out int gid))
            {
                groups.Add(new GroupEntry(f[0], gid, f[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
            }
        }

        return groups;
    }
}
