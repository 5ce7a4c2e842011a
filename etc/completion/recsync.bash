# bash completion for recsync(1)                           -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/recsync.

_recsync() {
  local cur prev words cword
  _init_completion || return

  local commands="status hold prune locate bandwidth fetch backfill verify id keygen"
  local i cmd="" sub=""
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      -c | --config | --socket | --interval | --for) ((i++)) ;;
      -*) ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=${words[i]}
        elif [[ $cmd == hold && -z $sub ]]; then
          sub=${words[i]}
        fi
        ;;
    esac
  done

  case "$prev" in
    -c | --config)
      _filedir conf
      return
      ;;
    --socket)
      _filedir sock
      return
      ;;
    --reason | --interval | --for)
      return
      ;;
  esac

  local opts=""
  case "$cmd" in
    "")
      if [[ $cur == -* ]]; then
        opts="-c --config --socket -h --help"
      else
        opts=$commands
      fi
      ;;
    status) opts="--json --check --watch --interval" ;;
    hold)
      case "$sub" in
        "") opts="add release list" ;;
        add) opts="--reason" ;;
        list) opts="--json" ;;
        release) opts="" ;;
      esac
      ;;
    prune) opts="--dry-run --json" ;;
    locate) opts="--json" ;;
    bandwidth) opts="--for --clear --json" ;;
    fetch) opts="--window --json" ;;
    backfill) opts="--dry-run --json --peer" ;;
    verify) opts="--now --json" ;;
    keygen) opts="--force" ;;
    id) opts="" ;;
  esac
  [[ -n $opts ]] && COMPREPLY=($(compgen -W "$opts" -- "$cur"))
} && complete -F _recsync recsync

# ex: filetype=sh
