// The `terdit` command. Subcommands are added by the CLI work (issue 2).
return 0;
