_zrelay() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="zrelay"
                ;;
            zrelay,configcheck)
                cmd="zrelay__subcmd__configcheck"
                ;;
            zrelay,daemon)
                cmd="zrelay__subcmd__daemon"
                ;;
            zrelay,gencompletion)
                cmd="zrelay__subcmd__gencompletion"
                ;;
            zrelay,genman)
                cmd="zrelay__subcmd__genman"
                ;;
            zrelay,help)
                cmd="zrelay__subcmd__help"
                ;;
            zrelay,history)
                cmd="zrelay__subcmd__history"
                ;;
            zrelay,migrate)
                cmd="zrelay__subcmd__migrate"
                ;;
            zrelay,monitor)
                cmd="zrelay__subcmd__monitor"
                ;;
            zrelay,prune)
                cmd="zrelay__subcmd__prune"
                ;;
            zrelay,queue)
                cmd="zrelay__subcmd__queue"
                ;;
            zrelay,replicate)
                cmd="zrelay__subcmd__replicate"
                ;;
            zrelay,signal)
                cmd="zrelay__subcmd__signal"
                ;;
            zrelay,status)
                cmd="zrelay__subcmd__status"
                ;;
            zrelay,stdinserver)
                cmd="zrelay__subcmd__stdinserver"
                ;;
            zrelay,test)
                cmd="zrelay__subcmd__test"
                ;;
            zrelay,version)
                cmd="zrelay__subcmd__version"
                ;;
            zrelay,zfs-abstraction)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction"
                ;;
            zrelay__subcmd__help,configcheck)
                cmd="zrelay__subcmd__help__subcmd__configcheck"
                ;;
            zrelay__subcmd__help,daemon)
                cmd="zrelay__subcmd__help__subcmd__daemon"
                ;;
            zrelay__subcmd__help,gencompletion)
                cmd="zrelay__subcmd__help__subcmd__gencompletion"
                ;;
            zrelay__subcmd__help,genman)
                cmd="zrelay__subcmd__help__subcmd__genman"
                ;;
            zrelay__subcmd__help,help)
                cmd="zrelay__subcmd__help__subcmd__help"
                ;;
            zrelay__subcmd__help,history)
                cmd="zrelay__subcmd__help__subcmd__history"
                ;;
            zrelay__subcmd__help,migrate)
                cmd="zrelay__subcmd__help__subcmd__migrate"
                ;;
            zrelay__subcmd__help,monitor)
                cmd="zrelay__subcmd__help__subcmd__monitor"
                ;;
            zrelay__subcmd__help,prune)
                cmd="zrelay__subcmd__help__subcmd__prune"
                ;;
            zrelay__subcmd__help,queue)
                cmd="zrelay__subcmd__help__subcmd__queue"
                ;;
            zrelay__subcmd__help,replicate)
                cmd="zrelay__subcmd__help__subcmd__replicate"
                ;;
            zrelay__subcmd__help,signal)
                cmd="zrelay__subcmd__help__subcmd__signal"
                ;;
            zrelay__subcmd__help,status)
                cmd="zrelay__subcmd__help__subcmd__status"
                ;;
            zrelay__subcmd__help,stdinserver)
                cmd="zrelay__subcmd__help__subcmd__stdinserver"
                ;;
            zrelay__subcmd__help,test)
                cmd="zrelay__subcmd__help__subcmd__test"
                ;;
            zrelay__subcmd__help,version)
                cmd="zrelay__subcmd__help__subcmd__version"
                ;;
            zrelay__subcmd__help,zfs-abstraction)
                cmd="zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction"
                ;;
            zrelay__subcmd__help__subcmd__migrate,0.0.X:0.1:placeholder)
                cmd="zrelay__subcmd__help__subcmd__migrate__subcmd__0.0.X:0.1:placeholder"
                ;;
            zrelay__subcmd__help__subcmd__migrate,replication-cursor:v1-v2)
                cmd="zrelay__subcmd__help__subcmd__migrate__subcmd__replication__subcmd__cursor:v1__subcmd__v2"
                ;;
            zrelay__subcmd__help__subcmd__monitor,alive)
                cmd="zrelay__subcmd__help__subcmd__monitor__subcmd__alive"
                ;;
            zrelay__subcmd__help__subcmd__monitor,replication)
                cmd="zrelay__subcmd__help__subcmd__monitor__subcmd__replication"
                ;;
            zrelay__subcmd__help__subcmd__monitor,snapshots)
                cmd="zrelay__subcmd__help__subcmd__monitor__subcmd__snapshots"
                ;;
            zrelay__subcmd__help__subcmd__queue,drop)
                cmd="zrelay__subcmd__help__subcmd__queue__subcmd__drop"
                ;;
            zrelay__subcmd__help__subcmd__queue,list)
                cmd="zrelay__subcmd__help__subcmd__queue__subcmd__list"
                ;;
            zrelay__subcmd__help__subcmd__queue,retry)
                cmd="zrelay__subcmd__help__subcmd__queue__subcmd__retry"
                ;;
            zrelay__subcmd__help__subcmd__test,decoderesumetoken)
                cmd="zrelay__subcmd__help__subcmd__test__subcmd__decoderesumetoken"
                ;;
            zrelay__subcmd__help__subcmd__test,filesystems)
                cmd="zrelay__subcmd__help__subcmd__test__subcmd__filesystems"
                ;;
            zrelay__subcmd__help__subcmd__test,placeholder)
                cmd="zrelay__subcmd__help__subcmd__test__subcmd__placeholder"
                ;;
            zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction,create)
                cmd="zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__create"
                ;;
            zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction,list)
                cmd="zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__list"
                ;;
            zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction,release-all)
                cmd="zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__all"
                ;;
            zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction,release-stale)
                cmd="zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__stale"
                ;;
            zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__create,step)
                cmd="zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__step"
                ;;
            zrelay__subcmd__migrate,0.0.X:0.1:placeholder)
                cmd="zrelay__subcmd__migrate__subcmd__0.0.X:0.1:placeholder"
                ;;
            zrelay__subcmd__migrate,help)
                cmd="zrelay__subcmd__migrate__subcmd__help"
                ;;
            zrelay__subcmd__migrate,replication-cursor:v1-v2)
                cmd="zrelay__subcmd__migrate__subcmd__replication__subcmd__cursor:v1__subcmd__v2"
                ;;
            zrelay__subcmd__migrate__subcmd__help,0.0.X:0.1:placeholder)
                cmd="zrelay__subcmd__migrate__subcmd__help__subcmd__0.0.X:0.1:placeholder"
                ;;
            zrelay__subcmd__migrate__subcmd__help,help)
                cmd="zrelay__subcmd__migrate__subcmd__help__subcmd__help"
                ;;
            zrelay__subcmd__migrate__subcmd__help,replication-cursor:v1-v2)
                cmd="zrelay__subcmd__migrate__subcmd__help__subcmd__replication__subcmd__cursor:v1__subcmd__v2"
                ;;
            zrelay__subcmd__monitor,alive)
                cmd="zrelay__subcmd__monitor__subcmd__alive"
                ;;
            zrelay__subcmd__monitor,help)
                cmd="zrelay__subcmd__monitor__subcmd__help"
                ;;
            zrelay__subcmd__monitor,replication)
                cmd="zrelay__subcmd__monitor__subcmd__replication"
                ;;
            zrelay__subcmd__monitor,snapshots)
                cmd="zrelay__subcmd__monitor__subcmd__snapshots"
                ;;
            zrelay__subcmd__monitor__subcmd__help,alive)
                cmd="zrelay__subcmd__monitor__subcmd__help__subcmd__alive"
                ;;
            zrelay__subcmd__monitor__subcmd__help,help)
                cmd="zrelay__subcmd__monitor__subcmd__help__subcmd__help"
                ;;
            zrelay__subcmd__monitor__subcmd__help,replication)
                cmd="zrelay__subcmd__monitor__subcmd__help__subcmd__replication"
                ;;
            zrelay__subcmd__monitor__subcmd__help,snapshots)
                cmd="zrelay__subcmd__monitor__subcmd__help__subcmd__snapshots"
                ;;
            zrelay__subcmd__queue,drop)
                cmd="zrelay__subcmd__queue__subcmd__drop"
                ;;
            zrelay__subcmd__queue,help)
                cmd="zrelay__subcmd__queue__subcmd__help"
                ;;
            zrelay__subcmd__queue,list)
                cmd="zrelay__subcmd__queue__subcmd__list"
                ;;
            zrelay__subcmd__queue,retry)
                cmd="zrelay__subcmd__queue__subcmd__retry"
                ;;
            zrelay__subcmd__queue__subcmd__help,drop)
                cmd="zrelay__subcmd__queue__subcmd__help__subcmd__drop"
                ;;
            zrelay__subcmd__queue__subcmd__help,help)
                cmd="zrelay__subcmd__queue__subcmd__help__subcmd__help"
                ;;
            zrelay__subcmd__queue__subcmd__help,list)
                cmd="zrelay__subcmd__queue__subcmd__help__subcmd__list"
                ;;
            zrelay__subcmd__queue__subcmd__help,retry)
                cmd="zrelay__subcmd__queue__subcmd__help__subcmd__retry"
                ;;
            zrelay__subcmd__test,decoderesumetoken)
                cmd="zrelay__subcmd__test__subcmd__decoderesumetoken"
                ;;
            zrelay__subcmd__test,filesystems)
                cmd="zrelay__subcmd__test__subcmd__filesystems"
                ;;
            zrelay__subcmd__test,help)
                cmd="zrelay__subcmd__test__subcmd__help"
                ;;
            zrelay__subcmd__test,placeholder)
                cmd="zrelay__subcmd__test__subcmd__placeholder"
                ;;
            zrelay__subcmd__test__subcmd__help,decoderesumetoken)
                cmd="zrelay__subcmd__test__subcmd__help__subcmd__decoderesumetoken"
                ;;
            zrelay__subcmd__test__subcmd__help,filesystems)
                cmd="zrelay__subcmd__test__subcmd__help__subcmd__filesystems"
                ;;
            zrelay__subcmd__test__subcmd__help,help)
                cmd="zrelay__subcmd__test__subcmd__help__subcmd__help"
                ;;
            zrelay__subcmd__test__subcmd__help,placeholder)
                cmd="zrelay__subcmd__test__subcmd__help__subcmd__placeholder"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction,create)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction,help)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction,list)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__list"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction,release-all)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__all"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction,release-stale)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__stale"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create,help)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create,step)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__step"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help,help)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help__subcmd__help"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help,step)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help__subcmd__step"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help,create)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__create"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help,help)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__help"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help,list)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__list"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help,release-all)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__release__subcmd__all"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help,release-stale)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__release__subcmd__stale"
                ;;
            zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__create,step)
                cmd="zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__create__subcmd__step"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        zrelay)
            opts="-h -V --config --help --version version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__configcheck)
            opts="-q -h -V --format --what --quiet --skip-cert-check --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --format)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --what)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__daemon)
            opts="-h -V --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__gencompletion)
            opts="-h -V --config --help --version bash zsh fish"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__genman)
            opts="-h -V --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help)
            opts="version replicate daemon signal status prune history gencompletion genman configcheck stdinserver test zfs-abstraction migrate monitor queue help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__configcheck)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__daemon)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__gencompletion)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__genman)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__history)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__migrate)
            opts="replication-cursor:v1-v2 0.0.X:0.1:placeholder"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__migrate__subcmd__0.0.X:0.1:placeholder)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__migrate__subcmd__replication__subcmd__cursor:v1__subcmd__v2)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__monitor)
            opts="alive snapshots replication"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__monitor__subcmd__alive)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__monitor__subcmd__replication)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__monitor__subcmd__snapshots)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__prune)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__queue)
            opts="list retry drop"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__queue__subcmd__drop)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__queue__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__queue__subcmd__retry)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__replicate)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__signal)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__status)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__stdinserver)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__test)
            opts="filesystems placeholder decoderesumetoken"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__test__subcmd__decoderesumetoken)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__test__subcmd__filesystems)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__test__subcmd__placeholder)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__version)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction)
            opts="list release-all release-stale create"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__create)
            opts="step"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__step)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__all)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__help__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__stale)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__history)
            opts="-h -V --job --fs --since --limit --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --fs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --since)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__migrate)
            opts="-h -V --config --help --version replication-cursor:v1-v2 0.0.X:0.1:placeholder help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__migrate__subcmd__0.0.X:0.1:placeholder)
            opts="-h -V --dry-run --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__migrate__subcmd__help)
            opts="replication-cursor:v1-v2 0.0.X:0.1:placeholder help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__migrate__subcmd__help__subcmd__0.0.X:0.1:placeholder)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__migrate__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__migrate__subcmd__help__subcmd__replication__subcmd__cursor:v1__subcmd__v2)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__migrate__subcmd__replication__subcmd__cursor:v1__subcmd__v2)
            opts="-h -V --dry-run --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor)
            opts="-h -V --config --help --version alive snapshots replication help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__alive)
            opts="-h -V --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__help)
            opts="alive snapshots replication help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__help__subcmd__alive)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__help__subcmd__replication)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__help__subcmd__snapshots)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__replication)
            opts="-w -c -h -V --job --target --warning --critical --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --target)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --warning)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -w)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --critical)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__monitor__subcmd__snapshots)
            opts="-w -c -h -V --job --warning --critical --prefix --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --warning)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -w)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --critical)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__prune)
            opts="-h -V --dry-run --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue)
            opts="-h -V --config --help --version list retry drop help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__drop)
            opts="-h -V --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__help)
            opts="list retry drop help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__help__subcmd__drop)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__help__subcmd__retry)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__list)
            opts="-h -V --job --target --state --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --target)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__queue__subcmd__retry)
            opts="-h -V --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__replicate)
            opts="-q -h -V --job --from --exclude --to --initial --protection-initial --protection-incremental --steps --size-estimates --encrypted --raw --send-properties --backup-properties --large-blocks --compressed --embedded-data --override --inherit --placeholder-encryption --force-overwrite --watchdog-secs --max-attempts --json --quiet --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --from)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --exclude)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --to)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --initial)
                    COMPREPLY=($(compgen -W "most-recent all fail" -- "${cur}"))
                    return 0
                    ;;
                --protection-initial)
                    COMPREPLY=($(compgen -W "guarantee-resumability guarantee-incremental guarantee-nothing" -- "${cur}"))
                    return 0
                    ;;
                --protection-incremental)
                    COMPREPLY=($(compgen -W "guarantee-resumability guarantee-incremental guarantee-nothing" -- "${cur}"))
                    return 0
                    ;;
                --steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --size-estimates)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --override)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --inherit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --placeholder-encryption)
                    COMPREPLY=($(compgen -W "unspecified off inherit" -- "${cur}"))
                    return 0
                    ;;
                --watchdog-secs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-attempts)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__signal)
            opts="-h -V --wait --config --help --version wakeup reset snapshot"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__status)
            opts="-d -h -V --mode --job --delay --watch --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --mode)
                    COMPREPLY=($(compgen -W "interactive dump raw" -- "${cur}"))
                    return 0
                    ;;
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --watch)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --delay)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -d)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__stdinserver)
            opts="-h -V --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test)
            opts="-h -V --config --help --version filesystems placeholder decoderesumetoken help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__decoderesumetoken)
            opts="-h -V --token --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --token)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__filesystems)
            opts="-h -V --job --all --input --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --input)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__help)
            opts="filesystems placeholder decoderesumetoken help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__help__subcmd__decoderesumetoken)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__help__subcmd__filesystems)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__help__subcmd__placeholder)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__test__subcmd__placeholder)
            opts="-h -V --all --dataset --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__version)
            opts="-h -V --short --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction)
            opts="-h -V --config --help --version list release-all release-stale create help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create)
            opts="-h -V --config --help --version step help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help)
            opts="step help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__help__subcmd__step)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__create__subcmd__step)
            opts="-t -j -h -V --target --job --jobid --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --target)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --jobid)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -j)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help)
            opts="list release-all release-stale create help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__create)
            opts="step"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__create__subcmd__step)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__release__subcmd__all)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__help__subcmd__release__subcmd__stale)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__list)
            opts="-p -h -V --fs --job --type --concurrency --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --fs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --type)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --concurrency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__all)
            opts="-p -h -V --fs --job --type --concurrency --dry-run --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --fs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --type)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --concurrency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        zrelay__subcmd__zfs__subcmd__abstraction__subcmd__release__subcmd__stale)
            opts="-p -h -V --fs --job --type --concurrency --dry-run --json --config --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --fs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --job)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --type)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --concurrency)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _zrelay -o nosort -o bashdefault -o default zrelay
else
    complete -F _zrelay -o bashdefault -o default zrelay
fi
