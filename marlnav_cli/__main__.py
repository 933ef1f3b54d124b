from marlnav_cli.cli import main

main()
