from containervps.cli import main

main()
