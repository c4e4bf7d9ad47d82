import type { Command } from 'commander';
import { example } from './client.ts';
import { UsageError } from './errors.ts';

/** Every command path (`servers start`) with its subcommands and its flags, read off the command tree. */
function walk(cmd: Command, prefix: string[] = [], out: Array<{ path: string; words: string[] }> = []) {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  const flags = cmd.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((x): x is string => !!x));
  out.push({ path: prefix.join(' '), words: [...subs.flatMap((c) => [c.name(), ...c.aliases()]), ...flags, '--help'] });
  for (const c of subs) for (const name of [c.name(), ...c.aliases()]) walk(c, [...prefix, name], out);
  return out;
}

/** Bash: the words after the longest known command path typed so far. zsh runs the same through bashcompinit. */
export function bashScript(program: Command): string {
  const cases = walk(program)
    .map(({ path, words }) => `    ${JSON.stringify(path)}) words="${words.join(' ')}" ;;`)
    .join('\n');
  return `# opensigma completion for bash: source <(opensigma completion bash)
_opensigma() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" p w i words
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    p=\${path:+$path }$w
    if _opensigma_words "$p" >/dev/null; then path=$p; fi
  done
  words=$(_opensigma_words "$path")
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
_opensigma_words() {
  local words
  case "$1" in
${cases}
    *) return 1 ;;
  esac
  echo "$words"
}
complete -F _opensigma opensigma
`;
}

export function registerCompletion(program: Command): void {
  const cmd = program.command('completion <shell>').description('print a shell completion script (bash or zsh)');
  example(cmd, 'source <(opensigma completion bash)        # in ~/.bashrc', 'source <(opensigma completion zsh)         # in ~/.zshrc');
  cmd.action((shell: string) => {
    if (shell === 'bash') process.stdout.write(bashScript(program));
    else if (shell === 'zsh') {
      const head = '# opensigma completion for zsh: source <(opensigma completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n';
      process.stdout.write(head + bashScript(program));
    } else throw new UsageError(`no completion for ${shell}: bash or zsh`);
  });
}
