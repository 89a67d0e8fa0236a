/** `skiff completion bash|zsh`: prints a completion script for the shell. */
import { EXIT_OK, UsageError, type Command } from "../command.js";

export const completionCommand: Command = {
  name: "completion",
  summary: "Print a shell completion script (bash or zsh)",
  usage: "skiff completion bash|zsh",
  async run(ctx, { positionals }) {
    // Imported lazily: the registry imports this module.
    const { allCommands } = await import("../registry.js");
    const words = (await allCommands()).flatMap((c) => [c.name, ...(c.aliases ?? [])]).join(" ");
    const shell = positionals[0];
    if (shell === "bash") {
      ctx.out(`_skiff() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${words} --url --json --timeout --help" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
complete -F _skiff skiff`);
    } else if (shell === "zsh") {
      ctx.out(`#compdef skiff
_skiff() {
  if (( CURRENT == 2 )); then
    compadd -- ${words}
  else
    _files
  fi
}
compdef _skiff skiff`);
    } else {
      throw new UsageError("completion takes bash or zsh");
    }
    return EXIT_OK;
  },
};
