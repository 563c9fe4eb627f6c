# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_zrelay_global_optspecs
    string join \n config= h/help V/version
end

function __fish_zrelay_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_zrelay_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_zrelay_using_subcommand
    set -l cmd (__fish_zrelay_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c zrelay -n "__fish_zrelay_needs_command" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_needs_command" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_needs_command" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "version" -d 'Print zrelay\'s version and the OpenZFS userland and kernel-module versions'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "replicate" -d 'Replicate filesystems to another dataset tree on this host, once'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "daemon" -d 'Run the configured jobs (push, sink, pull, source) until SIGINT/SIGTERM'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "signal" -d 'Signal a job of the running daemon: wakeup (replicate now) or reset (abort)'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "status" -d 'Show the running daemon\'s jobs and their replication progress'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "prune" -d 'Prune a job\'s snapshots now; --dry-run lists what would go and why the rest stays'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "history" -d 'Show the durable record of replication attempts (invocations, attempts, steps)'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "gencompletion" -d 'Write a shell completion script (bash, zsh or fish) to PATH, or print it'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "genman" -d 'Print the man page (roff)'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "configcheck" -d 'Check the configuration (zrepl\'s format) and print it validated'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "stdinserver" -d 'The ssh forced command of `serve: {type: stdinserver}` (authorized_keys)'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "test" -d 'Test a job\'s filesystems filter, placeholder state, or a resume token'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "zfs-abstraction" -d 'List, release or create zrepl\'s holds and cursor bookmarks on ZFS'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "migrate" -d 'zrepl\'s migrations of on-ZFS state (replication-cursor:v1-v2)'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "monitor" -d 'Monitoring checks with Nagios exit codes: alive, snapshots, replication'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "queue" -d 'The durable work queue: list records, retry or drop one'
complete -c zrelay -n "__fish_zrelay_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand version" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand version" -l short -d 'Print only zrelay\'s own version; do not look for OpenZFS'
complete -c zrelay -n "__fish_zrelay_using_subcommand version" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand version" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l job -d 'The job name; it is part of the hold tags and bookmark names, so keep it stable' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l from -d 'Replicate this filesystem and its subtree (repeatable)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l exclude -d 'Exclude this filesystem (append `<` for its subtree; repeatable)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l to -d 'Receive under this root: `<to>/<sender path>`. It must exist' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l initial -d '`conflict_resolution.initial_replication`' -r -f -a "most-recent\t'Full send of the newest snapshot only'
all\t'Full send of the oldest snapshot, then every later one'
fail\t'Refuse; the operator seeds the receiver'"
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l protection-initial -d '`replication.protection.initial`' -r -f -a "guarantee-resumability\t'Step holds: interrupted steps can always resume'
guarantee-incremental\t'Tentative cursor: incremental replication stays possible'
guarantee-nothing\t'No abstractions'"
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l protection-incremental -d '`replication.protection.incremental`' -r -f -a "guarantee-resumability\t'Step holds: interrupted steps can always resume'
guarantee-incremental\t'Tentative cursor: incremental replication stays possible'
guarantee-nothing\t'No abstractions'"
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l steps -d '`replication.concurrency.steps`: steps of different filesystems running at once' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l size-estimates -d '`replication.concurrency.size_estimates`: estimate stream sizes with dry-run sends, this many at once. Without it the sizes come from space properties, with no extra command' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l override -d '`recv.properties.override`: PROP=VALUE (repeatable)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l inherit -d '`recv.properties.inherit`: PROP (repeatable)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l placeholder-encryption -d '`recv.placeholder.encryption`' -r -f -a "unspecified\t'Fail when a placeholder would be created under an encrypted parent'
off\t'Create placeholders with encryption=off'
inherit\t'Placeholders inherit the parent\'s encryption'"
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l watchdog-secs -d 'Abort a step that moves no byte for this many seconds' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l max-attempts -d 'Attempts before giving up on temporary errors' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l encrypted -d '`send.encrypted`: only encrypted filesystems, sent raw'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l raw -d '`send.raw` (-w)'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l send-properties -d '`send.send_properties` (-p)'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l backup-properties -d '`send.backup_properties` (-b)'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l large-blocks -d '`send.large_blocks` (-L)'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l compressed -d '`send.compressed` (-c)'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l embedded-data -d '`send.embedded_data` (-e)'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l force-overwrite -d 'Allow a full receive with -F over an existing non-placeholder filesystem'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -l json -d 'Print the final report as JSON on stdout'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -s q -l quiet -d 'Do not print progress'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zrelay -n "__fish_zrelay_using_subcommand replicate" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand daemon" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand daemon" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand daemon" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand signal" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand signal" -l wait -d 'Wait until what the signal triggered (replication invocation or snapshot round) has finished, print its per-filesystem result, and exit non-zero if any filesystem failed'
complete -c zrelay -n "__fish_zrelay_using_subcommand signal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zrelay -n "__fish_zrelay_using_subcommand signal" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand status" -l mode -d 'Output mode (default: interactive on a terminal, else dump)' -r -f -a "interactive\t'A live terminal UI (the default on a terminal)'
dump\t'Plain text (the default when stdout is not a terminal)'
raw\t'JSON, with the schema of docs/status-schema.md'"
complete -c zrelay -n "__fish_zrelay_using_subcommand status" -l job -d 'Only this job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand status" -s d -l watch -l delay -d 'Dump mode: repeat every interval (e.g. 1s) until interrupted. Interactive mode: the refresh interval (default 1s). `--delay` is zrepl\'s spelling' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand status" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zrelay -n "__fish_zrelay_using_subcommand status" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand prune" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand prune" -l dry-run -d 'Destroy nothing: list what would be destroyed on each side, and why each survivor survives; for a push job with `replicas` rules, also which replicas would be renamed or destroyed'
complete -c zrelay -n "__fish_zrelay_using_subcommand prune" -l json -d 'Print the reports as JSON'
complete -c zrelay -n "__fish_zrelay_using_subcommand prune" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand prune" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -l job -d 'Only this job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -l fs -d 'Only this filesystem (and those below it), in the sender\'s namespace' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -l since -d 'Only records of the last DURATION (e.g. 30m, 24h, 7d)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -l limit -d 'At most this many rows, newest first' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -l json -d 'Print JSON'
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand history" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand gencompletion" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand gencompletion" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zrelay -n "__fish_zrelay_using_subcommand gencompletion" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand genman" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand genman" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand genman" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand configcheck" -l format -d 'Print the validated configuration as: pretty, yaml (zrepl syntax, defaults written out) or json' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand configcheck" -l what -d 'Which part to print: all, config, jobs or logging' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand configcheck" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand configcheck" -s q -l quiet -d 'Only check; print nothing on success'
complete -c zrelay -n "__fish_zrelay_using_subcommand configcheck" -l skip-cert-check -d 'zrepl\'s flag to skip loading TLS certificate and key files. A no-op in zrelay, accepted for compatibility: configcheck never reads them (the daemon does, when a job starts)'
complete -c zrelay -n "__fish_zrelay_using_subcommand configcheck" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand configcheck" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand stdinserver" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand stdinserver" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand stdinserver" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and not __fish_seen_subcommand_from filesystems placeholder decoderesumetoken help" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and not __fish_seen_subcommand_from filesystems placeholder decoderesumetoken help" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and not __fish_seen_subcommand_from filesystems placeholder decoderesumetoken help" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and not __fish_seen_subcommand_from filesystems placeholder decoderesumetoken help" -f -a "filesystems" -d 'Show which datasets a job\'s `filesystems` filter includes, and which rule decides'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and not __fish_seen_subcommand_from filesystems placeholder decoderesumetoken help" -f -a "placeholder" -d 'Show whether datasets are placeholders (a locally set `zrepl:placeholder`)'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and not __fish_seen_subcommand_from filesystems placeholder decoderesumetoken help" -f -a "decoderesumetoken" -d 'Decode a `receive_resume_token` (in process, from its binary form; no zfs runs)'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and not __fish_seen_subcommand_from filesystems placeholder decoderesumetoken help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from filesystems" -l job -d 'The job (push, source or snap) whose filter to test' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from filesystems" -l input -d 'Test this dataset name (it need not exist)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from filesystems" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from filesystems" -l all -d 'Test every dataset of every imported pool'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from filesystems" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from filesystems" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from placeholder" -l dataset -d 'This dataset' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from placeholder" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from placeholder" -l all -d 'Every filesystem and volume of every imported pool'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from placeholder" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from placeholder" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from decoderesumetoken" -l token -d 'The token (the `receive_resume_token` property of a partial receive)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from decoderesumetoken" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from decoderesumetoken" -l json -d 'Print JSON (zrepl\'s field names, plus the position and the other flags)'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from decoderesumetoken" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from decoderesumetoken" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from help" -f -a "filesystems" -d 'Show which datasets a job\'s `filesystems` filter includes, and which rule decides'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from help" -f -a "placeholder" -d 'Show whether datasets are placeholders (a locally set `zrepl:placeholder`)'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from help" -f -a "decoderesumetoken" -d 'Decode a `receive_resume_token` (in process, from its binary form; no zfs runs)'
complete -c zrelay -n "__fish_zrelay_using_subcommand test; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -f -a "list" -d 'List zrepl\'s abstractions (holds and cursor bookmarks)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -f -a "release-all" -d '(DANGEROUS) Remove every matching abstraction: release the holds, destroy the bookmarks'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -f -a "release-stale" -d 'Remove the stale matching abstractions (those replication no longer needs)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -f -a "create" -d 'Create an abstraction (for debugging; replication creates its own)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and not __fish_seen_subcommand_from list release-all release-stale create help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -l fs -d 'Only this filesystem (repeatable), or zrepl\'s filter syntax: a comma-separated list of `<pattern>:<ok|!>` (`pool/a<:ok,pool/a/tmp<:!`). Default: every dataset of every imported pool' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -l job -d 'Only abstractions of this job (repeatable). Default: any job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -l type -d 'Only these types (comma-separated): step-hold, last-received-hold, tentative-replication-cursor-bookmark-v2, replication-cursor-bookmark-v1, replication-cursor-bookmark-v2. Default: all' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -s p -l concurrency -d 'Accepted for compatibility with zrepl; zrelay lists in batched calls' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -l json -d 'Print one JSON object per abstraction and line'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -l fs -d 'Only this filesystem (repeatable), or zrepl\'s filter syntax: a comma-separated list of `<pattern>:<ok|!>` (`pool/a<:ok,pool/a/tmp<:!`). Default: every dataset of every imported pool' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -l job -d 'Only abstractions of this job (repeatable). Default: any job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -l type -d 'Only these types (comma-separated): step-hold, last-received-hold, tentative-replication-cursor-bookmark-v2, replication-cursor-bookmark-v1, replication-cursor-bookmark-v2. Default: all' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -s p -l concurrency -d 'Accepted for compatibility with zrepl; zrelay lists in batched calls' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -l dry-run -d 'Remove nothing: print what would be removed'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -l json -d 'Print JSON'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-all" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -l fs -d 'Only this filesystem (repeatable), or zrepl\'s filter syntax: a comma-separated list of `<pattern>:<ok|!>` (`pool/a<:ok,pool/a/tmp<:!`). Default: every dataset of every imported pool' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -l job -d 'Only abstractions of this job (repeatable). Default: any job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -l type -d 'Only these types (comma-separated): step-hold, last-received-hold, tentative-replication-cursor-bookmark-v2, replication-cursor-bookmark-v1, replication-cursor-bookmark-v2. Default: all' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -s p -l concurrency -d 'Accepted for compatibility with zrepl; zrelay lists in batched calls' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -l dry-run -d 'Remove nothing: print what would be removed'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -l json -d 'Print JSON'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from release-stale" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from create" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from create" -f -a "step" -d 'Place a step hold (`zrepl_STEP_J_<job>`) on a snapshot'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from create" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from help" -f -a "list" -d 'List zrepl\'s abstractions (holds and cursor bookmarks)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from help" -f -a "release-all" -d '(DANGEROUS) Remove every matching abstraction: release the holds, destroy the bookmarks'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from help" -f -a "release-stale" -d 'Remove the stale matching abstractions (those replication no longer needs)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create an abstraction (for debugging; replication creates its own)'
complete -c zrelay -n "__fish_zrelay_using_subcommand zfs-abstraction; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and not __fish_seen_subcommand_from replication-cursor:v1-v2 0.0.X:0.1:placeholder help" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and not __fish_seen_subcommand_from replication-cursor:v1-v2 0.0.X:0.1:placeholder help" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and not __fish_seen_subcommand_from replication-cursor:v1-v2 0.0.X:0.1:placeholder help" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and not __fish_seen_subcommand_from replication-cursor:v1-v2 0.0.X:0.1:placeholder help" -f -a "replication-cursor:v1-v2" -d 'Destroy the v1 replication cursors (`#zrepl_replication_cursor`) that the owning job\'s v2 cursor has superseded'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and not __fish_seen_subcommand_from replication-cursor:v1-v2 0.0.X:0.1:placeholder help" -f -a "0.0.X:0.1:placeholder" -d 'zrepl 0.0.X to 0.1 placeholder migration: not needed by zrelay'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and not __fish_seen_subcommand_from replication-cursor:v1-v2 0.0.X:0.1:placeholder help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from replication-cursor:v1-v2" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from replication-cursor:v1-v2" -l dry-run -d 'Change nothing: print what would be done'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from replication-cursor:v1-v2" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from replication-cursor:v1-v2" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from 0.0.X:0.1:placeholder" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from 0.0.X:0.1:placeholder" -l dry-run -d 'Change nothing: print what would be done'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from 0.0.X:0.1:placeholder" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from 0.0.X:0.1:placeholder" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "replication-cursor:v1-v2" -d 'Destroy the v1 replication cursors (`#zrepl_replication_cursor`) that the owning job\'s v2 cursor has superseded'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "0.0.X:0.1:placeholder" -d 'zrepl 0.0.X to 0.1 placeholder migration: not needed by zrelay'
complete -c zrelay -n "__fish_zrelay_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and not __fish_seen_subcommand_from alive snapshots replication help" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and not __fish_seen_subcommand_from alive snapshots replication help" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and not __fish_seen_subcommand_from alive snapshots replication help" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and not __fish_seen_subcommand_from alive snapshots replication help" -f -a "alive" -d 'Whether the daemon answers on its control socket (CRITICAL if not), and whether any job has failed (WARNING)'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and not __fish_seen_subcommand_from alive snapshots replication help" -f -a "snapshots" -d 'The age of the newest snapshot of each of a job\'s filesystems'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and not __fish_seen_subcommand_from alive snapshots replication help" -f -a "replication" -d 'The replication lag of each of a push or pull job\'s filesystems (and target): the age of the newest sender snapshot the receiver has, as the daemon saw it after its last invocation'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and not __fish_seen_subcommand_from alive snapshots replication help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from alive" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from alive" -l json -d 'Print one JSON object instead of the plugin line'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from alive" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from alive" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -l job -d 'The job (push, source or snap) whose filesystems to check' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -s w -l warning -d 'WARNING when a newest snapshot is older than this (zrepl durations: 90m, 2h, 1d)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -s c -l critical -d 'CRITICAL when a newest snapshot is older than this' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -l prefix -d 'Count only snapshots whose name starts with this prefix' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -l json -d 'Print one JSON object instead of the plugin line'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from snapshots" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -l job -d 'The push or pull job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -l target -d 'Only this target of a fan-out push job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -s w -l warning -d 'WARNING when a lag is longer than this (zrepl durations: 90m, 2h, 1d)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -s c -l critical -d 'CRITICAL when a lag is longer than this, or nothing is replicated' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -l json -d 'Print one JSON object instead of the plugin line'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from replication" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from help" -f -a "alive" -d 'Whether the daemon answers on its control socket (CRITICAL if not), and whether any job has failed (WARNING)'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from help" -f -a "snapshots" -d 'The age of the newest snapshot of each of a job\'s filesystems'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from help" -f -a "replication" -d 'The replication lag of each of a push or pull job\'s filesystems (and target): the age of the newest sender snapshot the receiver has, as the daemon saw it after its last invocation'
complete -c zrelay -n "__fish_zrelay_using_subcommand monitor; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and not __fish_seen_subcommand_from list retry drop help" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and not __fish_seen_subcommand_from list retry drop help" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and not __fish_seen_subcommand_from list retry drop help" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and not __fish_seen_subcommand_from list retry drop help" -f -a "list" -d 'List records (one per job, target and filesystem)'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and not __fish_seen_subcommand_from list retry drop help" -f -a "retry" -d 'Make a failed or dead record ready again (after fixing its cause)'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and not __fish_seen_subcommand_from list retry drop help" -f -a "drop" -d 'Remove a record that is not in progress'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and not __fish_seen_subcommand_from list retry drop help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from list" -l job -d 'Only this job' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from list" -l target -d 'Only this target (`default` for a job with one)' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from list" -l state -d 'Only this state: ready, in_progress, completed, failed, dead' -r
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from retry" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from retry" -l json -d 'Print the record as JSON'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from retry" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from drop" -l config -d 'The configuration file (default: the first that exists of /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml). Accepted before or after the subcommand' -r -F
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from drop" -l json -d 'Print the record as JSON'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from drop" -s h -l help -d 'Print help'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from drop" -s V -l version -d 'Print version'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "list" -d 'List records (one per job, target and filesystem)'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "retry" -d 'Make a failed or dead record ready again (after fixing its cause)'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "drop" -d 'Remove a record that is not in progress'
complete -c zrelay -n "__fish_zrelay_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "version" -d 'Print zrelay\'s version and the OpenZFS userland and kernel-module versions'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "replicate" -d 'Replicate filesystems to another dataset tree on this host, once'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "daemon" -d 'Run the configured jobs (push, sink, pull, source) until SIGINT/SIGTERM'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "signal" -d 'Signal a job of the running daemon: wakeup (replicate now) or reset (abort)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "status" -d 'Show the running daemon\'s jobs and their replication progress'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "prune" -d 'Prune a job\'s snapshots now; --dry-run lists what would go and why the rest stays'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "history" -d 'Show the durable record of replication attempts (invocations, attempts, steps)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "gencompletion" -d 'Write a shell completion script (bash, zsh or fish) to PATH, or print it'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "genman" -d 'Print the man page (roff)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "configcheck" -d 'Check the configuration (zrepl\'s format) and print it validated'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "stdinserver" -d 'The ssh forced command of `serve: {type: stdinserver}` (authorized_keys)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "test" -d 'Test a job\'s filesystems filter, placeholder state, or a resume token'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "zfs-abstraction" -d 'List, release or create zrepl\'s holds and cursor bookmarks on ZFS'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "migrate" -d 'zrepl\'s migrations of on-ZFS state (replication-cursor:v1-v2)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "monitor" -d 'Monitoring checks with Nagios exit codes: alive, snapshots, replication'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "queue" -d 'The durable work queue: list records, retry or drop one'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and not __fish_seen_subcommand_from version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from test" -f -a "filesystems" -d 'Show which datasets a job\'s `filesystems` filter includes, and which rule decides'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from test" -f -a "placeholder" -d 'Show whether datasets are placeholders (a locally set `zrepl:placeholder`)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from test" -f -a "decoderesumetoken" -d 'Decode a `receive_resume_token` (in process, from its binary form; no zfs runs)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from zfs-abstraction" -f -a "list" -d 'List zrepl\'s abstractions (holds and cursor bookmarks)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from zfs-abstraction" -f -a "release-all" -d '(DANGEROUS) Remove every matching abstraction: release the holds, destroy the bookmarks'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from zfs-abstraction" -f -a "release-stale" -d 'Remove the stale matching abstractions (those replication no longer needs)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from zfs-abstraction" -f -a "create" -d 'Create an abstraction (for debugging; replication creates its own)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "replication-cursor:v1-v2" -d 'Destroy the v1 replication cursors (`#zrepl_replication_cursor`) that the owning job\'s v2 cursor has superseded'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "0.0.X:0.1:placeholder" -d 'zrepl 0.0.X to 0.1 placeholder migration: not needed by zrelay'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from monitor" -f -a "alive" -d 'Whether the daemon answers on its control socket (CRITICAL if not), and whether any job has failed (WARNING)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from monitor" -f -a "snapshots" -d 'The age of the newest snapshot of each of a job\'s filesystems'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from monitor" -f -a "replication" -d 'The replication lag of each of a push or pull job\'s filesystems (and target): the age of the newest sender snapshot the receiver has, as the daemon saw it after its last invocation'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "list" -d 'List records (one per job, target and filesystem)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "retry" -d 'Make a failed or dead record ready again (after fixing its cause)'
complete -c zrelay -n "__fish_zrelay_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "drop" -d 'Remove a record that is not in progress'
