from tierbot.cli import main

raise SystemExit(main())
