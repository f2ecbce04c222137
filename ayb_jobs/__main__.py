from ayb_jobs.cli import main

raise SystemExit(main())
