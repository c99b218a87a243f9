SELECT version FROM /* TEMPLATE: schema */oddsledger_migrations
