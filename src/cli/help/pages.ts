/**
 * The manual page text of every `skiff` command (rendered by render.ts). A command without a page
 * here fails test/unit/cli/help.test.ts, as does a page for a command that does not exist or an
 * option text for a flag the command does not parse.
 */
import type { HelpPage } from "./render.js";

const CONTAINER = "A container: name:version, or just its name when exactly one version of it is installed.";
const DOCS = "docs/console.md";

export const HELP_PAGES: Record<string, HelpPage> = {
  help: {
    description: [
      "Prints the manual page of COMMAND: synopsis, description, options, exit status and examples. `skiff COMMAND --help` prints the same page. Without COMMAND, prints the list of commands.",
    ],
    operands: [["COMMAND", "A command name or alias, as listed by `skiff --help`."]],
    exitStatus: [["2", "COMMAND is not a skiff command."]],
    examples: [
      ["skiff help start", "The page of `skiff start`."],
      ["skiff help | less", "Every command with its one-line summary."],
    ],
  },
  list: {
    description: [
      "Lists the containers installed in the daemon's repositories, one name:version per line, sorted. Needs the `list` permission.",
    ],
    examples: [
      ["skiff list", "Every installed container."],
      ["skiff --json ls", "The daemon's `list` answer as one JSON line."],
    ],
    seeAlso: ["skiff ps", "skiff inspect"],
  },
  inspect: {
    description: [
      "With a container, asks the daemon for its manifest, repository, whether its image is mounted, its process (pid, uptime, statistics) when it runs, its lifecycle state and its power state.",
      "With a path to an NPK file (an existing file, or an argument ending in .npk), reads the package itself without a daemon: its manifest, signature and file system image; --short prints only the name, version and whether it is signed.",
    ],
    operands: [
      ["CONTAINER", CONTAINER],
      ["NPK", "A package file."],
    ],
    options: { short: { text: "With an NPK file: one line of name, version and signature state." } },
    examples: [
      ["skiff inspect hello-world", "The installed container, as the daemon sees it."],
      ["skiff inspect build/hello-world-0.0.1.npk", "A package file, without a daemon."],
    ],
    seeAlso: ["skiff list", "skiff power", "docs/npk.md"],
  },
  repositories: {
    description: [
      "Lists the daemon's repositories by name (the `[repositories.NAME]` tables of its configuration).",
    ],
    examples: [["skiff repos", "The repositories, e.g. `default`."]],
    seeAlso: ["skiff install"],
  },
  ident: {
    description: [
      "Prints the identity the daemon gives this connection: a container id for a connection from a container's own console, otherwise the connection's peer.",
    ],
    examples: [["skiff ident", "Who the daemon thinks is asking."]],
    seeAlso: [DOCS],
  },
  install: {
    description: [
      "Uploads the package file NPK to the daemon, which verifies it (signature, manifest, image) and installs it into REPOSITORY. The upload streams the file; on a terminal a progress bar shows large uploads (not with --json, nor when stderr is not a terminal). An upload has no request deadline: the daemon aborts one that sends nothing for npk_stream_timeout.",
    ],
    operands: [
      ["NPK", "The package file (skiff pack writes one)."],
      ["REPOSITORY", "A repository name (skiff repositories)."],
    ],
    exitStatus: [
      [
        "1",
        "The daemon refused the package (bad signature, already installed, repository full...) or the upload failed.",
      ],
    ],
    examples: [
      [
        "skiff install build/hello-world-0.0.1.npk default",
        "Installs the example into the `default` repository.",
      ],
    ],
    seeAlso: ["skiff pack", "skiff uninstall", "docs/npk.md"],
  },
  uninstall: {
    description: [
      "Removes an installed container from its repository. A running container must be stopped first. --wipe also deletes its persistent data (its `persist` mounts under data_dir).",
    ],
    operands: [["CONTAINER", CONTAINER]],
    options: { wipe: { text: "Also delete the container's persistent data." } },
    examples: [["skiff uninstall hello-world --wipe", "Removes the package and its data."]],
    seeAlso: ["skiff install"],
  },
  mount: {
    description: [
      "Mounts the images of the given containers (and verifies them with dm-verity where the host has it), so that a later start does not pay for it. Each container's result is printed; starting mounts what is not mounted anyway.",
    ],
    operands: [["CONTAINER...", `One or more containers. ${CONTAINER}`]],
    exitStatus: [["1", "At least one container could not be mounted (each result is printed)."]],
    examples: [["skiff mount httpd hello-world", "Mounts two images ahead of their start."]],
    seeAlso: ["skiff umount", "skiff prepare"],
  },
  umount: {
    description: [
      "Unmounts the images of the given containers. A running container's image stays mounted (an error for it).",
    ],
    operands: [["CONTAINER...", `One or more containers. ${CONTAINER}`]],
    exitStatus: [["1", "At least one container could not be unmounted."]],
    examples: [["skiff umount hello-world", "Releases the image of a stopped container."]],
    seeAlso: ["skiff mount"],
  },
  start: {
    description: [
      "Starts a container: mounts its image, writes its OCI bundle, and has its monitor create and start it with the OCI runtime (runc). Returns once the container runs, or with the reason it did not: when the runtime itself failed (runc create), its own error text is in the error and in `skiff logs`.",
      "After `--`, INIT and ARGS replace the manifest's init and arguments; -e replaces the manifest's environment (Northstar's semantics: the request's env is the whole env). A start with any of these cannot use a prepared instance and starts cold.",
      "--debug-hold keeps a container whose application fails at start inspectable: skiff-init runs the application as usual, and when it exits (whatever its status) or cannot be executed, the container stays up instead of ending. Its log says so; its root, mounts, environment and cgroup can then be examined (`nsenter -t PID -a` with the pid from `skiff ps`, or /proc/PID/root). `skiff stop` ends it with the application's own exit status. The hold is the environment variable SKIFF_DEBUG_HOLD=1 in the start request, which skiff-init removes before the application starts; without -e the manifest's environment is sent along with it.",
    ],
    operands: [
      ["CONTAINER", CONTAINER],
      ["INIT ARGS...", "After --: the program to run instead of the manifest's init, and its arguments."],
    ],
    options: {
      env: {
        arg: "KEY=VALUE",
        text: "An environment variable for this start (replaces the manifest's env).",
      },
      "debug-hold": {
        text: "Keep the container up for inspection when its application exits or cannot be executed.",
      },
    },
    exitStatus: [
      [
        "1",
        "The container did not start; the message says why (the runtime's own error when runc create failed).",
      ],
    ],
    examples: [
      ["skiff start hello-world", "Starts the example; it prints one line and exits."],
      [
        "skiff start httpd -e PORT=8080 -- /bin/httpd -f -p 8080",
        "Another init, arguments and environment for this start.",
      ],
      [
        "skiff start --debug-hold myapp && skiff logs myapp",
        "Starts myapp so that it stays inspectable if it fails, and shows why it failed.",
      ],
    ],
    seeAlso: ["skiff stop", "skiff logs", "skiff prepare", "docs/containers.md"],
  },
  exec: {
    description: [
      "Runs CMD with ARGS inside a running container: in its namespaces and cgroup, with its capabilities, rlimits, seccomp filter and environment, through the OCI runtime's `exec` under a Skiff helper that waits for the process itself, so the status that comes back is exact (an exit code, or the signal that killed it). Standard output and standard error stream back as they are written; with -i, standard input is sent to the process. Needs the `exec` permission (Skiff dialect only).",
      "A paused or suspended container is refused (resume or wake it first). The process is counted in the container's pids limit and dies with the container. When the connection closes before the process ends, the process gets SIGHUP, then SIGKILL after 1 s.",
    ],
    operands: [
      ["CONTAINER", CONTAINER],
      [
        "CMD ARGS",
        "The program (a path inside the container, or a name looked up in its PATH) and its arguments, after `--`.",
      ],
    ],
    options: {
      interactive: {
        text: "Send this terminal's standard input to the process (end of input closes its stdin).",
      },
      tty: {
        text: "Give the process a terminal (a pty in the container); this terminal goes to raw mode and its size follows. Without -t, SIGINT, SIGTERM and SIGHUP are forwarded to the process.",
      },
      env: {
        arg: "K=V",
        text: "Set an environment variable (repeatable); the container's environment is the base.",
      },
      cwd: {
        arg: "DIR",
        text: "The working directory inside the container (absolute; default: the container's).",
      },
      user: {
        arg: "UID[:GID]",
        text: "Run as this user and group, as numbers (default: the container's uid and gid).",
      },
      timeout: {
        arg: "SECONDS",
        text: "Deadline of the exec request itself (default 10); the process may run longer.",
      },
    },
    exitStatus: [
      ["N", "The process exited with code N."],
      ["128+N", "Signal N killed the process (with --json, the last line says which it was exactly)."],
      ["1", "The daemon refused the request (not running, paused, no permission...)."],
      ["2", "Usage error."],
    ],
    examples: [
      ["skiff exec httpd -- ls /", "Lists the container's root."],
      ["skiff exec -it httpd -- /bin/sh", "An interactive shell inside httpd."],
      ["skiff --json exec httpd -- false", "Prints the exact status as JSON; exits 1."],
    ],
    seeAlso: ["skiff start", "docs/containers.md"],
  },
  stop: {
    description: [
      "Stops a running container: SIGTERM to its init (which forwards it to the application), then SIGKILL to everything left after the grace period, and prints how it ended (exit code or signal). Waits as long as that takes.",
    ],
    operands: [["CONTAINER", CONTAINER]],
    options: {
      timeout: {
        arg: "SECONDS",
        text: "The grace period between SIGTERM and SIGKILL (default: the manifest's stop_timeout, else 5 s). Here -t is not a request deadline: a stop waits for the end.",
      },
    },
    examples: [
      ["skiff stop httpd", "Stops httpd and prints e.g. `stopped httpd:0.0.1: exit code 0`."],
      ["skiff stop -t 2 httpd", "SIGKILL after 2 s."],
    ],
    seeAlso: ["skiff kill", "skiff start"],
  },
  kill: {
    description: [
      "Sends SIGNAL to a running container's init, which forwards it to the application. The container ends only if the application does.",
    ],
    operands: [
      ["CONTAINER", CONTAINER],
      ["SIGNAL", "A signal name (TERM, SIGTERM, HUP...) or number; default SIGTERM."],
    ],
    examples: [
      ["skiff kill httpd HUP", "Asks httpd to reload."],
      ["skiff kill myapp 9", "SIGKILL to the application."],
    ],
    seeAlso: ["skiff stop"],
  },
  logs: {
    description: [
      "Prints the container's log, as its monitor writes it: one line per output line, `<time> <stdout|stderr> <text>`, across rotated files. Also for a container that is not running: the log of its last run stays. When the runtime could not create the container, the runtime's own error text is there as a stderr line, even when the manifest discards the container's output.",
    ],
    operands: [["CONTAINER", CONTAINER]],
    options: {
      follow: { text: "Keep printing new lines as they are written, until interrupted (Ctrl-C)." },
      lines: { arg: "LINES", text: "Print the last LINES lines (default 100)." },
    },
    examples: [
      ["skiff logs hello-world", "What hello-world printed."],
      ["skiff logs -f -n 20 httpd", "The last 20 lines, then follow."],
    ],
    seeAlso: ["skiff start", "docs/containers.md"],
  },
  ps: {
    description: [
      "Lists running containers as a table: name, version, init pid on the host, uptime, who started it, memory in use.",
    ],
    examples: [["skiff ps", "What runs now."]],
    seeAlso: ["skiff stats", "skiff list"],
  },
  stats: {
    description: [
      "Shows cgroup statistics of running containers (or only those named): CPU use since the previous sample, memory use against the limit, tasks, I/O. -f refreshes every second until interrupted.",
    ],
    operands: [["CONTAINER...", `Containers to show (default: all running). ${CONTAINER}`]],
    options: { follow: { text: "Refresh every second until interrupted." } },
    examples: [
      ["skiff stats", "One sample of every running container."],
      ["skiff stats -f httpd", "httpd's figures, refreshed every second."],
    ],
    seeAlso: ["skiff ps", "docs/cgroups.md", "docs/metrics.md"],
  },
  pause: {
    description: [
      "Freezes a running container (cgroup freezer). Pausing a paused container succeeds. Wake sources do not wake a paused container; `skiff resume` does.",
    ],
    operands: [["CONTAINER", CONTAINER]],
    examples: [["skiff pause httpd", "httpd stops being scheduled."]],
    seeAlso: ["skiff resume", "skiff suspend", "docs/power.md"],
  },
  resume: {
    description: ["Thaws a paused container. Resuming a container that is not paused is an error."],
    operands: [["CONTAINER", CONTAINER]],
    examples: [["skiff resume httpd", "httpd runs again."]],
    seeAlso: ["skiff pause", "docs/power.md"],
  },
  suspend: {
    description: [
      "Suspends a container: freezes it until one of its wake sources fires, or --max-sleep passes, then thaws it and prints how long it slept and what woke it. Fails while the container holds wake locks.",
    ],
    operands: [["CONTAINER", CONTAINER]],
    options: {
      "max-sleep": { arg: "DURATION", text: "Wake after this long at the latest (e.g. 500ms, 10s, 5m)." },
    },
    exitStatus: [
      ["1", "The container could not be suspended (wake locks held, not running) or the freeze failed."],
    ],
    examples: [
      ["skiff suspend httpd-idle --max-sleep 1m", "Sleeps until a request on its proxy channel or a minute."],
    ],
    seeAlso: ["skiff wakesource", "skiff wakelock", "skiff power", "docs/power.md"],
  },
  wakelock: {
    description: [
      "Acquires or releases the wake lock LOCK of a container. While any lock is held, `suspend` fails (and an idle suspend does not happen). An acquired lock may expire after --timeout.",
    ],
    operands: [
      ["acquire|release", "What to do."],
      ["CONTAINER", CONTAINER],
      ["LOCK", "The lock's name."],
    ],
    options: {
      timeout: {
        arg: "DURATION",
        text: "With acquire: the lock is released by itself after this long. (Here -t is not a request deadline.)",
      },
    },
    examples: [
      [
        "skiff wakelock acquire httpd update --timeout 5m",
        "Keeps httpd awake during an update, at most 5 minutes.",
      ],
      ["skiff wakelock release httpd update", "Lets it sleep again."],
    ],
    seeAlso: ["skiff suspend", "docs/power.md"],
  },
  wakesource: {
    description: [
      "Adds or removes a wake source of a container: what ends its suspend. A path source watches a FIFO, or a Unix socket the daemon listens on at PATH (data or a connection wakes); a timer wakes after a duration or at a time; a proxy source is a proxy channel's traffic.",
    ],
    operands: [
      ["add|remove", "What to do."],
      ["CONTAINER", CONTAINER],
      ["SOURCE", "The source's name (it appears as the wake reason)."],
    ],
    options: {
      path: {
        arg: "PATH",
        text: "Wake on data or a connection at this absolute host path (FIFO or socket).",
      },
      "timer-after": { arg: "DURATION", text: "Wake this long after the suspend began." },
      "timer-at": { arg: "EPOCH_MS", text: "Wake at this time (milliseconds since the epoch)." },
      proxy: { arg: "CHANNEL", text: "Wake on traffic of this proxy channel (skiff proxy)." },
    },
    examples: [
      ["skiff wakesource add sensor tick --timer-after 30s", "The sensor wakes every suspend after 30 s."],
      ["skiff wakesource remove sensor tick", "Removes it."],
    ],
    seeAlso: ["skiff suspend", "skiff proxy", "docs/power.md"],
  },
  proxy: {
    description: [
      "Opens the proxy wake channel CHANNEL of a container: the daemon listens at --listen on the host and forwards each connection or datagram to --target inside the container, waking it first if it is suspended. The channel's traffic can be a wake source.",
    ],
    operands: [
      ["CONTAINER", CONTAINER],
      ["CHANNEL", "The channel's name."],
    ],
    options: {
      listen: {
        arg: "URL",
        text: "Where the daemon accepts: unix:///PATH, tcp://127.0.0.1:PORT or udp://127.0.0.1:PORT.",
      },
      target: {
        arg: "URL",
        text: "Where it forwards to in the container: unix:///PATH (in the container), tcp://HOST:PORT or udp://HOST:PORT.",
      },
      framing: {
        arg: "FRAMING",
        text: "How messages are counted for the channel's counters: newline, length or datagram.",
      },
    },
    examples: [
      [
        "skiff proxy httpd-idle web --listen tcp://127.0.0.1:8081 --target tcp://127.0.0.1:80",
        "Requests to port 8081 wake httpd-idle and reach its port 80.",
      ],
    ],
    seeAlso: ["skiff wakesource", "docs/power.md"],
  },
  power: {
    description: [
      "Shows a container's power state (awake, asleep, paused), its wake locks, wake sources, proxy counters and its last suspend (how long, what woke it).",
    ],
    operands: [["CONTAINER", CONTAINER]],
    examples: [["skiff power httpd-idle", "Asleep or awake, and why it last woke."]],
    seeAlso: ["skiff suspend", "docs/power.md"],
  },
  prepare: {
    description: [
      "Mounts a container's image and has the runtime create it, with its init waiting on the exec fifo, so that a later `skiff start` only opens the fifo (milliseconds). `[debug] commands` run at this point, with the waiting init's pid.",
    ],
    operands: [["CONTAINER", CONTAINER]],
    examples: [
      ["skiff prepare hello-world && skiff start hello-world", "A start that only opens the exec fifo."],
    ],
    seeAlso: ["skiff start", "docs/executor.md"],
  },
  health: {
    description: [
      "Checks the executor: that the OCI runtime and the monitor binary work, and whether checkpoint/restore (CRIU) works here. Prints the problems when degraded.",
    ],
    exitStatus: [
      ["1", "The executor is degraded (containers cannot start), or the daemon could not be reached."],
    ],
    examples: [["skiff health", "ok, or the problems."]],
    seeAlso: ["docs/executor.md"],
  },
  checkpoint: {
    description: [
      "Saves a running container's processes with CRIU (runc checkpoint) into its checkpoint image and stops it. `skiff restore` continues it where it left off.",
    ],
    operands: [["CONTAINER", CONTAINER]],
    exitStatus: [
      ["1", "CRIU does not work here (see skiff health), or the dump failed (the container keeps running)."],
    ],
    examples: [
      ["skiff checkpoint counter && skiff restore counter", "Stop with its state and go on from it."],
    ],
    seeAlso: ["skiff restore", "skiff health"],
  },
  restore: {
    description: [
      "Starts a checkpointed container from its checkpoint image (runc restore), where it left off. The image is discarded once restored.",
    ],
    operands: [["CONTAINER", CONTAINER]],
    examples: [["skiff restore counter", "Continues the checkpointed counter."]],
    seeAlso: ["skiff checkpoint"],
  },
  shutdown: {
    description: [
      "Asks the daemon to shut down: it stops every container (SIGTERM, grace, SIGKILL), unmounts images and exits. Returns once the daemon has acknowledged.",
    ],
    examples: [["skiff shutdown", "Ends skiffd."]],
  },
  notifications: {
    description: [
      "Prints the daemon's notifications as they arrive (started, exit, install, power, health...), one per line, until interrupted or COUNT were printed. If this client falls behind, the daemon drops notifications and says how many (`lagged`); skiff reports it and goes on.",
    ],
    options: { number: { arg: "COUNT", text: "Exit after COUNT notifications." } },
    examples: [
      ["skiff events &", "Follow what happens in the background."],
      ["skiff --json notifications -n 1", "Wait for the next notification and print it as JSON."],
    ],
    seeAlso: [DOCS],
  },
  token: {
    description: [
      "Asks the daemon for a token for TARGET with the shared text SHARED (Northstar's token_create) and prints it in base64. It verifies for a while (token_validity).",
    ],
    operands: [
      ["TARGET", "Who the token is for (a container name)."],
      ["SHARED", "A text both sides know."],
    ],
    examples: [["skiff token hello-world secret", "A base64 token."]],
    seeAlso: ["skiff verify-token", "docs/northstar.md"],
  },
  "verify-token": {
    description: [
      "Verifies TOKEN as USER's with the shared text SHARED and prints Ok, Invalid, Expired or Future.",
    ],
    operands: [
      ["TOKEN", "A token as skiff token prints it."],
      ["USER", "The container the token was made by."],
      ["SHARED", "The shared text."],
    ],
    exitStatus: [["1", "The token is Invalid, Expired or Future (or the request failed)."]],
    examples: [['skiff verify-token "$T" hello-world secret', "Ok, exit 0."]],
    seeAlso: ["skiff token"],
  },
  pack: {
    description: [
      "Builds a signed NPK (Northstar 0.9 format) without a daemon: from a manifest and a root directory, or from an OCI image with --from-oci (an OCI layout directory, an oci-archive or docker-archive tar, or docker://HOST/NAME:TAG from a registry; the image's entrypoint, env and user fill the manifest, the rest comes from flags or a manifest fragment).",
      "On a terminal, large package files show a progress bar while they are written; nothing is shown when stderr is not a terminal, nor with --json. Prints the paths written (--json: as a JSON object).",
    ],
    options: {
      manifest: {
        arg: "MANIFEST",
        text: "The manifest (YAML, JSON or TOML); with --from-oci a fragment that adds to what the image gives.",
      },
      root: { arg: "ROOT", text: "The container's root directory." },
      key: { arg: "KEY", text: "Ed25519 private key to sign with (skiff gen-key); unsigned without." },
      out: { arg: "OUT", text: "Output directory or file (default: the current directory)." },
      compression: { arg: "ALGORITHM", text: "Image compression: none, gzip, lzo, xz, zstd, lz4 or lz4hc." },
      "block-size": { arg: "BYTES", text: "The file system's block size." },
      fs: { arg: "FS", text: "squashfs (default) or erofs." },
      clones: { arg: "N", text: "Write N packages named NAME-1 .. NAME-N (containers with an init only)." },
      "from-oci": {
        arg: "SOURCE",
        text: "Build from this OCI image instead of -r (see docs/oci-images.md).",
      },
      name: { arg: "NAME", text: "With --from-oci: the container's name." },
      version: { arg: "VERSION", text: "With --from-oci: the container's version." },
      user: {
        arg: "UID[:GID]",
        text: "With --from-oci: run as this user instead of the image's (root only when asked for).",
      },
      platform: {
        arg: "OS/ARCH",
        text: "With --from-oci: the platform to pick from a multi-platform image.",
      },
      "max-image-size": { arg: "SIZE", text: "With --from-oci: refuse images larger than this (e.g. 512M)." },
      creds: { arg: "USER:PASSWORD", text: "With --from-oci docker://: registry credentials." },
    },
    exitStatus: [
      ["1", "The manifest, root, key or image was refused (the message says why); nothing is left behind."],
    ],
    examples: [
      [
        "skiff pack -m manifest.yaml -r root -k vendor.key -o build/",
        "A signed package from a manifest and a root.",
      ],
      [
        "skiff pack --from-oci oci-archive:app.tar --name app --version 1.0.0 -k vendor.key",
        "A package from an image saved with podman save.",
      ],
    ],
    seeAlso: ["skiff install", "skiff gen-key", "docs/npk.md", "docs/oci-images.md"],
  },
  unpack: {
    description: [
      "Extracts an NPK's files (manifest, signature) and its root file system into DIR, without a daemon.",
    ],
    operands: [
      ["NPK", "A package file."],
      ["DIR", "Where to extract (created)."],
    ],
    examples: [["skiff unpack hello-world-0.0.1.npk /tmp/hw", "The package's files and root under /tmp/hw."]],
    seeAlso: ["skiff inspect", "skiff pack"],
  },
  "gen-key": {
    description: [
      "Generates an Ed25519 key pair NAME.key (private) and NAME.pub (public) in DIR (default: the current directory), for signing packages and configuring repositories.",
    ],
    operands: [
      ["NAME", "The key files' base name."],
      ["DIR", "Where to write them."],
    ],
    examples: [["skiff gen-key vendor /etc/skiff", "/etc/skiff/vendor.key and vendor.pub."]],
    seeAlso: ["skiff pack"],
  },
  seccomp: {
    description: [
      "Reads an `strace -f` log (FILE, or stdin with - or no FILE) and prints a manifest `seccomp` allow list of the system calls it saw. With --default-profile, lists only what Northstar's default profile does not already allow. `[debug] commands` with strace give such a log for a container.",
    ],
    operands: [["FILE", "The strace log; - or nothing: stdin."]],
    options: {
      "default-profile": { text: "Print `profile: default` and only the calls it lacks." },
      arch: { arg: "ARCH", text: "x64 or arm64 (default: this machine's)." },
      "skip-unknown": {
        text: "Leave out names that are not Linux system calls (reported on stderr) instead of refusing the list.",
      },
    },
    exitStatus: [
      [
        "1",
        "The log names calls that are not Linux system calls (without --skip-unknown) or has no system calls.",
      ],
    ],
    examples: [
      [
        "strace -f -o app.log ./app && skiff seccomp --default-profile app.log",
        "An allow list to paste into the manifest.",
      ],
    ],
    seeAlso: ["docs/northstar.md"],
  },
  completion: {
    description: [
      "Prints a completion script for bash or zsh: command names and global options after `skiff`, file names after a command.",
    ],
    operands: [["bash|zsh", "The shell."]],
    examples: [["source <(skiff completion bash)", "Completion in this bash session."]],
  },
};
