from rerum_server.cli import main

main()
