from mailroom.cli.main import main

raise SystemExit(main())
