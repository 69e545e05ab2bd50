from mailroom.cli import main

raise SystemExit(main())
